import { describe, expect, it } from 'vitest';
import { chatBody, post } from '../../tools/clients';
import { startMockVllm } from '../../tools/mockVllm';
import { eventually } from '../support/eventually';
import { sleep } from '../../tools/nginx';
import { freePort } from '../../tools/stack';
import { useGateway } from '../support/useGateway';

const CAPPED = 'capped-model';
const PRIO = 'prio-model';
const SHORT = 'short-wait-model';
const FAILOVER = 'replicated-model';
const deadPort = await freePort();
const sickPort = await freePort();

const gw = useGateway({
  backends: {
    be_cap: { models: [CAPPED, PRIO, SHORT], latencyMs: 300 },
    be_rep: { models: [FAILOVER] },
  },
  models: {
    [CAPPED]: { upstream: 'be_cap', max_inflight: 3, max_queue: 6, queue_timeout: '20s' },
    [PRIO]: { upstream: 'be_cap', max_inflight: 1, max_queue: 10, queue_timeout: '30s' },
    [SHORT]: { upstream: 'be_cap', max_inflight: 1, max_queue: 5, queue_timeout: '500ms' },
    [FAILOVER]: { upstream: 'be_rep' },
  },
  // A dead replica and one that answers 503 beside the healthy mock.
  upstreams: { be_rep: { extraServers: [`127.0.0.1:${deadPort}`, `127.0.0.1:${sickPort}`], max_fails: 1, fail_timeout: '30s' } },
});

async function queueState(model: string): Promise<Record<string, number>> {
  const res = await fetch(`${gw.adminUrl}/admin/queue`, { headers: { authorization: `Bearer ${gw.adminToken}` } });
  expect(res.status).toBe(200);
  return (await res.json()).models[model];
}

/** The model's counters once nothing is in flight or waiting (the counters settle in the log phase). */
async function settle(model: string): Promise<Record<string, number>> {
  return eventually(async () => {
    const s = await queueState(model);
    expect(s).toMatchObject({ inflight: 0, waiting: 0 });
    return s;
  }, { everyMs: 100 });
}

/** Waits until /admin/queue shows the model with `inflight` requests holding a slot and `waiting` queued. */
async function queued(model: string, inflight: number, waiting: number): Promise<void> {
  await eventually(async () => expect(await queueState(model)).toMatchObject({ inflight, waiting }));
}

describe('per-model cap and wait queue', () => {
  it('a burst of 4x the cap: backend never sees more than the cap, the queue drains, the rest get 429 + Retry-After, no 5xx', async () => {
    gw.mocks.be_cap.resetStats();
    const results = await Promise.all(Array.from({ length: 12 }, () => post(`${gw.url}/v1/chat/completions`, chatBody(CAPPED))
      .then(async (r) => ({ status: r.status, retry: r.headers.get('retry-after'), body: await r.json() }))));
    const ok = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status === 429);
    expect(ok.length).toBe(9); // 3 slots + 6 waiting
    expect(refused.length).toBe(3);
    for (const r of refused) {
      expect(r.body.error.code).toBe('queue_full');
      expect(Number(r.retry)).toBeGreaterThanOrEqual(1);
    }
    expect(results.filter((r) => r.status >= 500)).toEqual([]);
    expect(gw.mocks.be_cap.stats.peakInflight).toBeLessThanOrEqual(3);
    expect(gw.mocks.be_cap.stats.peakInflight).toBe(3); // and it was kept full
    const s = await settle(CAPPED);
    expect(s).toMatchObject({ inflight: 0, waiting: 0, rejected: 3 });
    expect(s.avg_wait_ms).toBeGreaterThan(0);
  });

  it('higher tiers go first when a slot frees', async () => {
    gw.mocks.be_cap.resetStats();
    // The first request holds the one slot at the backend until every waiter has queued.
    const hold = post(`${gw.url}/v1/chat/completions`, chatBody(PRIO), { 'x-mock-hold': 'prio', 'x-tag': 'hold' });
    await queued(PRIO, 1, 0);
    const order = ['low', 'normal', 'low', 'high', 'normal', 'high'];
    const waiters: Promise<Response>[] = [];
    for (const [i, tier] of order.entries()) {
      waiters.push(post(`${gw.url}/v1/chat/completions`, chatBody(PRIO), { 'x-priority': tier, 'x-tag': `${tier}-${i}`, 'x-mock-latency-ms': '30' }));
      await queued(PRIO, 1, i + 1);
    }
    gw.mocks.be_cap.openHold('prio');
    const statuses = await Promise.all([hold, ...waiters].map((p) => p.then((r) => r.status)));
    expect(statuses.every((s) => s === 200)).toBe(true);
    const served = gw.mocks.be_cap.stats.recentHeaders.map((h) => String(h['x-tag'])).filter((t) => t !== 'hold' && t !== 'undefined'); // untagged: health probes
    // Tiers in order, and arrival order within a tier.
    expect(served).toEqual(['high-3', 'high-5', 'normal-1', 'normal-4', 'low-0', 'low-2']);
    expect(gw.mocks.be_cap.stats.peakInflight).toBe(1);
  });

  it('a wait longer than queue_timeout → 429 queue_timeout with Retry-After, never a hang or a 502', async () => {
    const hold = post(`${gw.url}/v1/chat/completions`, chatBody(SHORT), { 'x-mock-hold': 'short' });
    await queued(SHORT, 1, 0);
    const t0 = Date.now();
    const res = await post(`${gw.url}/v1/chat/completions`, chatBody(SHORT));
    const waited = Date.now() - t0;
    gw.mocks.be_cap.openHold('short');
    expect(res.status).toBe(429);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await res.json()).error.code).toBe('queue_timeout');
    expect(waited).toBeGreaterThanOrEqual(450);
    expect((await hold).status).toBe(200);
    expect(await settle(SHORT)).toMatchObject({ inflight: 0, waiting: 0, timed_out: 1 });
  });

  it('chaos: aborts while waiting and mid-stream, a backend killed and restarted, a reload mid-load → counters back to 0, traffic flows', async () => {
    gw.allowErrorLog(/connect\(\) failed|upstream prematurely closed|recv\(\) failed|no live upstreams|reset by peer/);
    const port = gw.mocks.be_cap.port;
    const runs: Promise<unknown>[] = [];
    let seed = 7;
    const rnd = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
    for (let i = 0; i < 24; i++) {
      const ac = new AbortController();
      const stream = i % 3 === 0;
      const body = chatBody(CAPPED, stream ? { stream: true } : {});
      runs.push(fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', body, signal: ac.signal,
        headers: { 'content-type': 'application/json', 'x-mock-chunks': '20', 'x-mock-chunk-delay-ms': '50' } })
        .then(async (r) => { if (r.body) for await (const _ of r.body) { /* drain until aborted */ } }).catch(() => undefined));
      if (rnd() < 0.5) setTimeout(() => ac.abort(), Math.floor(rnd() * 1500));
      await sleep(20);
    }
    await sleep(300);
    // Kill the backend under load, bring it back on the same port, and reload nginx meanwhile.
    await gw.mocks.be_cap.close();
    await gw.nginx.reload();
    await sleep(300);
    gw.mocks.be_cap = await startMockVllm({ name: 'be_cap', models: [CAPPED, PRIO, SHORT], port, latencyMs: 50 });
    await Promise.all(runs);
    const s = await settle(CAPPED);
    expect(s.inflight).toBe(0);
    expect(s.waiting).toBe(0);
    // The active health check marked the killed backend down; wait until it sees it back up.
    await eventually(async () => expect((await post(`${gw.url}/v1/chat/completions`, chatBody(CAPPED))).status).toBe(200), { everyMs: 250 });
    const after = await Promise.all(Array.from({ length: 6 }, () => post(`${gw.url}/v1/chat/completions`, chatBody(CAPPED)).then((r) => r.status)));
    expect(after).toEqual([200, 200, 200, 200, 200, 200]);
    expect((await settle(CAPPED)).inflight).toBe(0);
  });
});

describe('replicas and failover', () => {
  it('with one replica down and one answering 503, every request still succeeds', async () => {
    gw.allowErrorLog(/connect\(\) failed|no live upstreams/);
    const sick = await startMockVllm({ name: 'sick', models: [FAILOVER], port: sickPort, failStatus: 503 });
    try {
      const statuses = await Promise.all(Array.from({ length: 20 }, () => post(`${gw.url}/v1/chat/completions`, chatBody(FAILOVER)).then((r) => r.status)));
      expect(statuses).toEqual(Array(20).fill(200));
      expect(sick.stats.requests).toBeGreaterThan(0); // it was tried, and its 503 went to the next replica
    } finally {
      await sick.close();
    }
  });
});

import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { classifyProbe, DOWN, FALL, healthFresh, nextHealth, ProbeResult, ready, STALE_MS, Status, UNKNOWN, UP, upstreamStatus } from '../../njs/src/core/health';

function run(probes: ProbeResult[]): number[] {
  let h = { state: UNKNOWN, fails: 0 };
  return probes.map((p) => (h = nextHealth(h, p)).state);
}

describe('active health checks', () => {
  it('takes a never-seen server down at its first failure', () => {
    expect(run(['fail'])).toEqual([DOWN]);
  });

  it(`keeps an up server up until ${FALL} consecutive failures, and one success brings it back`, () => {
    expect(FALL).toBe(2);
    expect(run(['ok', 'fail', 'ok', 'fail', 'fail', 'fail', 'ok'])).toEqual([UP, UP, UP, UP, DOWN, DOWN, UP]);
  });

  it('marks servers it cannot probe (host name without resolver) unknown, not down', () => {
    expect(classifyProbe(0, 'localhost could not be resolved (no resolver defined)')).toBe('unprobeable');
    expect(run(['ok', 'unprobeable'])).toEqual([UP, UNKNOWN]);
  });

  it('classifies probe answers', () => {
    expect(classifyProbe(200, '')).toBe('ok');
    expect(classifyProbe(204, '')).toBe('ok');
    expect(classifyProbe(503, '')).toBe('fail');
    expect(classifyProbe(0, 'connect failed')).toBe('fail');
    expect(classifyProbe(0, 'read timed out')).toBe('fail');
  });

  it('an upstream is up with any server up, down only when all are down', () => {
    expect(upstreamStatus([DOWN, UP])).toBe('up');
    expect(upstreamStatus([DOWN, DOWN])).toBe('down');
    expect(upstreamStatus([DOWN, UNKNOWN])).toBe('unknown');
    expect(upstreamStatus([])).toBe('unknown');
  });

  it('ignores health data the refresher has not renewed lately', () => {
    expect(healthFresh(undefined, 1000)).toBe(false);
    expect(healthFresh(1000, 1000 + STALE_MS)).toBe(true);
    expect(healthFresh(1000, 1001 + STALE_MS)).toBe(false);
  });

  it('readiness policies', () => {
    const cases: [Status[], boolean, boolean][] = [
      [['up', 'up'], true, true],
      [['up', 'unknown'], true, true],
      [['up', 'down'], false, true],
      [['down', 'down'], false, false],
      [[], true, true],
    ];
    for (const [s, all, any] of cases) {
      expect(ready(s, 'all'), `all ${s}`).toBe(all);
      expect(ready(s, 'any'), `any ${s}`).toBe(any);
    }
  });
});

/**
 * The health store (njs/src/ngx/health.ts) over in-memory zones, loaded by a path tsc does not
 * follow (it is njs code). Pins the key layout: gw_health survives `nginx -s reload`, so a new
 * bundle must read what the old one wrote.
 */
interface HealthStore {
  healthEnabled(): boolean;
  recordProbe(upstream: string, server: string, result: ProbeResult): number;
  recordUpstream(upstream: string, states: number[]): void;
  upstreamDown(upstream: string): boolean;
  markTick(now: number): void;
  modelHealthy(upstream: string): boolean;
  healthSnapshot(t: unknown, now: number, errorOf: (u: string, s: string) => string | null): {
    active: boolean; checked_at: number | null;
    upstreams: { [u: string]: { status: Status; servers: { address: string; status: Status; checked_at: number | null; error: string | null }[] } };
  };
}
interface DiscoveryErrors {
  writeProbeError(upstream: string, server: string, text: string): void;
  readProbeError(upstream: string, server: string): string | null;
}
const healthPath = '../../njs/src/ngx/health';
const discoveryPath = '../../njs/src/ngx/discoveryStore';
const store = (await import(/* @vite-ignore */ healthPath)) as HealthStore;
const errs = (await import(/* @vite-ignore */ discoveryPath)) as DiscoveryErrors;

function dict<T>() {
  const data = new Map<string, T>();
  return { data, get: (k: string) => data.get(k), set(k: string, v: T) { data.set(k, v); return this; } };
}

describe('health store (ngx/health.ts)', () => {
  const g = globalThis as unknown as { ngx?: unknown };
  const before = g.ngx;
  let health = dict<number>();
  let disc = dict<string>();
  beforeEach(() => {
    health = dict<number>();
    disc = dict<string>();
    g.ngx = { shared: { gw_health: health, gw_discovery: disc } };
  });
  afterAll(() => { g.ngx = before; });
  const table = { upstreams: { be: { servers: ['127.0.0.1:1', '127.0.0.1:2'] } }, models: {} };

  it('records a round under the documented keys and reads it back through healthSnapshot and modelHealthy', () => {
    const now = Date.now();
    const a = store.recordProbe('be', '127.0.0.1:1', 'fail');
    errs.writeProbeError('be', '127.0.0.1:1', 'connect failed');
    const b = store.recordProbe('be', '127.0.0.1:2', 'fail');
    errs.writeProbeError('be', '127.0.0.1:2', 'HTTP 503');
    store.recordUpstream('be', [a, b]);
    store.markTick(now);
    expect([a, b]).toEqual([DOWN, DOWN]);
    expect(health.data.get('s\nbe\n127.0.0.1:1')).toBe(DOWN);
    expect(health.data.get('f\nbe\n127.0.0.1:1')).toBe(1);
    expect(typeof health.data.get('c\nbe\n127.0.0.1:2')).toBe('number');
    expect(health.data.get('u\nbe')).toBe(DOWN);
    expect(health.data.get('tick')).toBe(now);
    expect(disc.data.get('e\nbe\n127.0.0.1:2')).toBe('HTTP 503');
    expect(store.upstreamDown('be')).toBe(true);
    expect(store.modelHealthy('be')).toBe(false);
    const v = store.healthSnapshot(table, now, errs.readProbeError);
    expect(v.active).toBe(true);
    expect(v.checked_at).toBe(Math.floor(now / 1000));
    expect(v.upstreams.be.status).toBe('down');
    expect(v.upstreams.be.servers.map((s) => [s.status, s.error])).toEqual([['down', 'connect failed'], ['down', 'HTTP 503']]);

    const c = store.recordProbe('be', '127.0.0.1:1', 'ok');
    errs.writeProbeError('be', '127.0.0.1:1', '');
    store.recordUpstream('be', [c, b]);
    expect(store.upstreamDown('be')).toBe(false);
    expect(store.healthSnapshot(table, now, errs.readProbeError).upstreams.be.servers[0]).toMatchObject({ status: 'up', error: null });
  });

  it('shows nothing as known when the round is stale or the zones are missing, and routing stays open', () => {
    store.recordUpstream('be', [DOWN]);
    store.markTick(Date.now() - STALE_MS - 1);
    expect(store.modelHealthy('be')).toBe(true);
    expect(store.healthSnapshot(table, Date.now(), errs.readProbeError).upstreams.be.status).toBe('unknown');
    g.ngx = { shared: {} };
    expect(store.healthEnabled()).toBe(false);
    expect(store.recordProbe('be', '127.0.0.1:1', 'fail')).toBe(UNKNOWN);
    errs.writeProbeError('be', '127.0.0.1:1', 'x');
    store.markTick(Date.now());
    expect(store.upstreamDown('be')).toBe(false);
    expect(store.modelHealthy('be')).toBe(true);
    const v = store.healthSnapshot(table, Date.now(), errs.readProbeError);
    expect([v.active, v.checked_at, v.upstreams.be.servers[0].error]).toEqual([false, null, null]);
  });
});

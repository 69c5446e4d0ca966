import { describe, expect, it } from 'vitest';
import { arrive, ARRIVE_FULL, leave, mayTry, QueueDict, release, retryAfterSec, sweepQueue, tryAcquire, waitingTotal, queueSnapshot } from '../../njs/src/core/queue';

function fakeDict(): QueueDict & { data: Record<string, number> } {
  const data: Record<string, number> = {};
  return { data, incr: (k, d) => (data[k] = (data[k] ?? 0) + d), get: (k) => data[k], set: (k, v) => { data[k] = v; } };
}
const lim = { max_inflight: 2, max_queue: 3, queue_timeout_ms: 10_000 };

describe('queue decisions', () => {
  it('cap 2, queue 3: slot, slot, then tickets 1-3, then full; refusals roll back', () => {
    const d = fakeDict();
    // > 0: a slot (the admitted count, unique), < 0: queued with ticket -answer, 0 (ARRIVE_FULL): full.
    const seq = Array.from({ length: 7 }, () => arrive(d, 'm', 'normal', lim));
    expect(seq).toEqual([1, 2, -1, -2, -3, ARRIVE_FULL, ARRIVE_FULL]);
    expect(d.data['admitted:m']).toBe(2);
    expect(d.data['inflight:m']).toBe(2);
    expect(waitingTotal(d, 'm')).toBe(3);
    expect(d.data['rejected:m']).toBe(2);
  });

  it('FIFO within a tier: only the lowest live ticket may try', () => {
    const d = fakeDict();
    expect(mayTry(d, 'm', 'normal', 1, 0, 1000, 0)).toBe(true);
    expect(mayTry(d, 'm', 'normal', 2, 0, 1000, 0)).toBe(false);
    d.data['issued:m:normal'] = 2;
    leave(d, 'm', 'normal', true, 5);
    expect(mayTry(d, 'm', 'normal', 2, 0, 1000, 0)).toBe(true);
  });

  it('an abandoned ticket loosens the order but never blocks it', () => {
    const d = fakeDict();
    d.data['issued:m:normal'] = 3;
    leave(d, 'm', 'normal', false, 10_000); // ticket 3 times out first
    expect(mayTry(d, 'm', 'normal', 1, 0, 1000, 0)).toBe(true);
    expect(mayTry(d, 'm', 'normal', 2, 0, 1000, 0)).toBe(true);
    leave(d, 'm', 'normal', true, 1);
    leave(d, 'm', 'normal', true, 1);
    expect(waitingTotal(d, 'm')).toBe(0);
    expect(d.data['timeouts:m']).toBe(1);
  });

  it('a lower tier defers to waiting higher tiers until it has aged', () => {
    const d = fakeDict();
    d.data['issued:m:high'] = 1;
    d.data['issued:m:low'] = 1;
    expect(mayTry(d, 'm', 'low', 1, 500, 1000, 0)).toBe(false);
    expect(mayTry(d, 'm', 'high', 1, 0, 1000, 0)).toBe(true);
    expect(mayTry(d, 'm', 'low', 1, 1000, 1000, 0)).toBe(true); // aged: no starvation
  });

  it('release frees a slot and feeds the service-time average; a reclaimed lease does not', () => {
    const d = fakeDict();
    expect(tryAcquire(d, 'm', 1)).toBe(true);
    expect(tryAcquire(d, 'm', 1)).toBe(false);
    release(d, 'm', 1000);
    expect(d.data['inflight:m']).toBe(0);
    expect(d.data['svc_ms:m']).toBe(1000);
    tryAcquire(d, 'm', 1);
    release(d, 'm', -1);
    expect(d.data['svc_ms:m']).toBe(1000);
    expect(d.data['done:m']).toBe(1);
  });

  it('Retry-After follows the observed service rate', () => {
    const d = fakeDict();
    expect(retryAfterSec(d, 'm', lim)).toBe(10); // nothing observed yet: the queue timeout
    d.data['svc_ms:m'] = 4000;
    d.data['issued:m:normal'] = 3;
    // (3 waiting + 1) * 4 s / 2 slots = 8 s
    expect(retryAfterSec(d, 'm', lim)).toBe(8);
  });

  it('the sweeper skips a dead head after its heartbeat goes stale', () => {
    const d = fakeDict();
    d.data['issued:m:normal'] = 2;
    expect(sweepQueue(d, 'm', 1000, 3000)).toBe(0);
    expect(queueSnapshot(d, 'm').waiting).toBe(2);
    expect(sweepQueue(d, 'm', 2000, 3000)).toBe(0);
    expect(sweepQueue(d, 'm', 4500, 3000)).toBe(1);
    expect(waitingTotal(d, 'm')).toBe(1);
  });
  it('the waiting gauge an arrival reads equals the waiters the tickets count, through arrivals, leaves and sweeps', () => {
    const d = fakeDict();
    const tiers = ['high', 'normal', 'low'] as const;
    const live: { t: (typeof tiers)[number]; ticket: number }[] = [];
    let seed = 7;
    const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
    for (let i = 0; i < 2000; i++) {
      const op = rnd(4);
      if (op <= 1) {
        const t = tiers[rnd(3)];
        const a = arrive(d, 'm', t, { max_inflight: 2, max_queue: 50, queue_timeout_ms: 1000 });
        if (a < 0) live.push({ t, ticket: -a });
      } else if (op === 2 && live.length > 0) {
        const w = live.splice(rnd(live.length), 1)[0];
        leave(d, 'm', w.t, rnd(2) === 0, 1);
      } else if (d.data['inflight:m'] > 0) {
        release(d, 'm', 5);
      }
      expect(d.data['waiting:m'] ?? 0).toBe(waitingTotal(d, 'm'));
    }
    // A dead head skipped by the sweeper leaves the gauge with the tickets.
    const before = waitingTotal(d, 'm');
    if (before > 0) {
      for (const t of tiers) d.data['hb:m:' + t] = 0;
      const skipped = sweepQueue(d, 'm', 10_000, 3000);
      expect(d.data['waiting:m']).toBe(before - skipped);
      expect(waitingTotal(d, 'm')).toBe(before - skipped);
    }
  });
});

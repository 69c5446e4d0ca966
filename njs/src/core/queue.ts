/**
 * Per-model concurrency caps with a bounded, fair wait queue, as decisions over atomic shared-dict
 * counters (no locks exist in njs; `incr` is atomic across workers). Keys, per model m and tier t:
 *   inflight:m         requests holding a slot (incr up to the cap, roll back when over)
 *   issued:m:t         tickets handed out to waiters of tier t (arrival order)
 *   started:m:t        tickets that left the queue (took a slot, timed out, or were swept)
 *   waiting:m          waiters of every tier, kept beside the tickets (+1 issued, -1 started) so an
 *                      arrival reads one key; the tickets stay the source for order and for readers
 *   hb:m:t             last time (ms) the tier's eligible waiter polled; the sweeper skips a dead head
 *   admitted:m rejected:m timeouts:m wait_ms:m done:m   counters;   svc_ms:m  EWMA service time
 *
 * Order: a waiter with ticket T may try for a slot only when T <= started + 1. Every ticket leaves
 * exactly once, so the lowest live ticket is always eligible: strict FIFO without abandonments, and
 * an abandoned ticket only loosens the order, it never blocks it.
 * Priority: an eligible waiter also defers to any higher tier with waiters, until it has waited
 * `agingMs`; then it competes as an equal, so a flood of high-tier work cannot starve the rest.
 */

/** A key's priority class (core/keys.ts validates it); TIER_ORDER lists them highest first. */
export type Tier = 'high' | 'normal' | 'low';
export const TIER_ORDER: Tier[] = ['high', 'normal', 'low'];

export interface QueueDict {
  incr(key: string, delta: number): number;
  get(key: string): number | undefined;
  set(key: string, value: number): void;
}

export interface ModelLimits {
  max_inflight: number;
  max_queue: number;
  queue_timeout_ms: number;
}

function n(d: QueueDict, k: string): number {
  const v = d.get(k);
  return v !== undefined ? v : 0;
}

export function tierOf(v: string): Tier {
  return v === 'high' || v === 'low' ? v : 'normal';
}

/** Takes a slot if one is free. */
export function tryAcquire(d: QueueDict, m: string, cap: number): boolean {
  if (d.incr('inflight:' + m, 1) <= cap) return true;
  d.incr('inflight:' + m, -1);
  return false;
}

export function waitersOf(d: QueueDict, m: string, t: Tier): number {
  const w = n(d, 'issued:' + m + ':' + t) - n(d, 'started:' + m + ':' + t);
  return w > 0 ? w : 0;
}

/** waitersOf summed over the tiers, written out (njs 0.8 pays per call): what Retry-After estimates from. */
export function waitingTotal(d: QueueDict, m: string): number {
  const hi = d.get('issued:' + m + ':high');
  const hs = d.get('started:' + m + ':high');
  const ni = d.get('issued:' + m + ':normal');
  const ns = d.get('started:' + m + ':normal');
  const li = d.get('issued:' + m + ':low');
  const ls = d.get('started:' + m + ':low');
  const h = (hi !== undefined ? hi : 0) - (hs !== undefined ? hs : 0);
  const n = (ni !== undefined ? ni : 0) - (ns !== undefined ? ns : 0);
  const l = (li !== undefined ? li : 0) - (ls !== undefined ? ls : 0);
  return (h > 0 ? h : 0) + (n > 0 ? n : 0) + (l > 0 ? l : 0);
}

/**
 * A new request: a slot at once when nobody waits and one is free; else a ticket if the queue has
 * room; else "full". The answer is one number, no object (every admission builds it): > 0, a slot,
 * the model's admitted count after this admission (unique for the zone's lifetime: it names the
 * slot's lease); < 0, queued with ticket -answer (tickets start at 1); ARRIVE_FULL (0), full.
 */
export function arrive(d: QueueDict, m: string, t: Tier, lim: ModelLimits): number {
  // The gauge, not the six ticket counters: every admission reads it (njs 0.8 pays per get).
  const g = d.get('waiting:' + m);
  const waiting = g !== undefined && g > 0 ? g : 0;
  if (waiting === 0) {
    // tryAcquire, written out (a call less on every admission).
    const k = 'inflight:' + m;
    if (d.incr(k, 1) <= lim.max_inflight) return d.incr('admitted:' + m, 1);
    d.incr(k, -1);
  }
  if (waiting >= lim.max_queue) {
    d.incr('rejected:' + m, 1);
    return 0; // ARRIVE_FULL
  }
  const ticket = d.incr('issued:' + m + ':' + t, 1);
  d.incr('waiting:' + m, 1);
  return -ticket;
}

/** arrive()'s answer when the queue is full. */
export const ARRIVE_FULL = 0;

/** How many waiters of its tier are ahead of this ticket (0: its turn). */
export function ahead(d: QueueDict, m: string, t: Tier, ticket: number): number {
  const a = ticket - n(d, 'started:' + m + ':' + t) - 1;
  return a > 0 ? a : 0;
}

/** Whether the waiter may try for a slot now (its turn in its tier, and priority allows). */
export function mayTry(d: QueueDict, m: string, t: Tier, ticket: number, waitedMs: number, agingMs: number, nowMs: number): boolean {
  if (ticket > n(d, 'started:' + m + ':' + t) + 1) return false;
  d.set('hb:' + m + ':' + t, nowMs);
  if (waitedMs >= agingMs) return true;
  for (let i = 0; i < TIER_ORDER.length && TIER_ORDER[i] !== t; i++) {
    if (waitersOf(d, m, TIER_ORDER[i]) > 0) return false;
  }
  return true;
}

/**
 * The waiter leaves the queue: with a slot, or without one (timeout). Exactly once per ticket.
 * With a slot, returns the model's admitted count after it (as arrive's slot answer); else 0.
 */
export function leave(d: QueueDict, m: string, t: Tier, gotSlot: boolean, waitedMs: number): number {
  d.incr('started:' + m + ':' + t, 1);
  d.incr('waiting:' + m, -1);
  if (!gotSlot) {
    d.incr('timeouts:' + m, 1);
    return 0;
  }
  d.incr('wait_ms:' + m, Math.round(waitedMs));
  return d.incr('admitted:' + m, 1);
}

/**
 * A slot is given back (the caller made sure this happens once per slot). heldMs < 0: the holder
 * is gone (a reclaimed lease), so its time says nothing about the service rate.
 */
export function release(d: QueueDict, m: string, heldMs: number): void {
  d.incr('inflight:' + m, -1);
  if (heldMs < 0) return;
  d.incr('done:' + m, 1);
  // EWMA of service time; concurrent updates may drop a sample, which an average can afford.
  const prev = d.get('svc_ms:' + m);
  // Rounded by arithmetic: Math is built anew in each request's VM the first time code touches it.
  const avg = prev === undefined ? heldMs : prev * 0.8 + heldMs * 0.2 + 0.5;
  d.set('svc_ms:' + m, avg - (avg % 1));
}

/**
 * Seconds until a request arriving now could expect a slot: the queue ahead of it divided by the
 * observed service rate (cap / mean service time). Bounded to [1, 300].
 */
export function retryAfterSec(d: QueueDict, m: string, lim: ModelLimits): number {
  const svc = n(d, 'svc_ms:' + m);
  const est = svc > 0 && lim.max_inflight > 0
    ? Math.ceil(((waitingTotal(d, m) + 1) * svc) / lim.max_inflight / 1000)
    : Math.ceil(lim.queue_timeout_ms / 1000);
  return Math.min(300, Math.max(1, est));
}

/**
 * Periodic repair for one model: recompute the waiting gauge from the tickets, and skip a tier's
 * head ticket whose waiter died (no heartbeat for staleMs while tickets are outstanding: a worker
 * crash). Returns how many tickets were skipped.
 */
export function sweepQueue(d: QueueDict, m: string, nowMs: number, staleMs: number): number {
  let skipped = 0;
  for (let i = 0; i < TIER_ORDER.length; i++) {
    const t = TIER_ORDER[i];
    if (waitersOf(d, m, t) > 0) {
      const hb = d.get('hb:' + m + ':' + t);
      if (hb === undefined) d.set('hb:' + m + ':' + t, nowMs);
      else if (nowMs - hb > staleMs) {
        d.incr('started:' + m + ':' + t, 1);
        d.incr('waiting:' + m, -1);
        d.set('hb:' + m + ':' + t, nowMs);
        skipped++;
      }
    }
  }
  return skipped;
}

/** What /admin/queue and /metrics show of one model: one reading of the counters, one source each. */
export interface QueueSnapshot {
  inflight: number;
  waiting: number;
  waiting_by_tier: { [t: string]: number };
  admitted: number;
  rejected: number;
  timed_out: number;
  completed: number;
  wait_ms: number;
  svc_ms: number;
}

export function queueSnapshot(d: QueueDict, m: string): QueueSnapshot {
  const byTier: { [t: string]: number } = {};
  let waiting = 0;
  for (let i = 0; i < TIER_ORDER.length; i++) {
    byTier[TIER_ORDER[i]] = waitersOf(d, m, TIER_ORDER[i]);
    waiting += byTier[TIER_ORDER[i]];
  }
  return {
    inflight: n(d, 'inflight:' + m), waiting: waiting, waiting_by_tier: byTier, admitted: n(d, 'admitted:' + m),
    rejected: n(d, 'rejected:' + m), timed_out: n(d, 'timeouts:' + m), completed: n(d, 'done:' + m),
    wait_ms: n(d, 'wait_ms:' + m), svc_ms: n(d, 'svc_ms:' + m),
  };
}

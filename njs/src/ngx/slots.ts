/**
 * Admission to a model's upstream through the wait queue (core/queue.ts) over the gw_queue zone,
 * with a lease per slot in gw_leases (expiry in ms). The slot is given back by njs.on('exit'),
 * which runs when the request ends however it ends (success, upstream error or timeout, client
 * abort mid-body or mid-stream, a worker finishing its requests after a reload). Lease and release
 * race through `delete`: only the caller that deletes the lease gives the slot back, so a slot is
 * returned exactly once, and a lease whose request vanished (worker crash) is reclaimed by the
 * sweeper (gw.ops.queueSweep) when it expires.
 */
import { arrive, ModelLimits, QueueDict, QueueSnapshot, queueSnapshot, release, Tier } from '../core/queue';
import { missingZone } from '../core/zones';

export function queueDict(): QueueDict {
  // The zone itself is the QueueDict (ngx/counter.ts says why); looked up here, one call less.
  const d = ngx.shared.gw_queue as unknown as QueueDict | undefined;
  if (!d) throw missingZone('gw_queue');
  return d;
}

export function leases(): NgxSharedDict<number> {
  const d = ngx.shared.gw_leases as NgxSharedDict<number> | undefined;
  if (!d) throw missingZone('gw_leases');
  return d;
}


/**
 * Gives back every slot whose lease expired by `now` (its request can no longer do it: a crashed
 * worker) and tells `onReclaim` the model of each. The delete decides, as in hold(): a slot is
 * returned once even if its request ends at the same moment.
 */
export function reclaimExpiredLeases(now: number, onReclaim: (model: string) => void): void {
  const d = queueDict();
  const l = leases();
  const items = l.items(1000000);
  for (let i = 0; i < items.length; i++) {
    const key = items[i][0];
    if (items[i][1] > now || !l.delete(key)) continue;
    const model = key.slice(0, key.indexOf('\t'));
    release(d, model, -1);
    onReclaim(model);
  }
}

/** The queue counters of one model (/admin/queue, /metrics); zeros where the zone is absent. */
export function queueSnapshotOf(model: string): QueueSnapshot {
  const d = ngx.shared.gw_queue as unknown as QueueDict | undefined;
  if (d !== undefined) return queueSnapshot(d, model);
  return queueSnapshot({ get: function () { return undefined; }, incr: function () { return 0; }, set: function () { /* read-only */ } }, model);
}

/** A model's queue limits and how long a slot may be held (its ModelRoute has them all). */
export interface AdmitLimits extends ModelLimits {
  slot_lease_ms: number;
}

export type AdmitResult = { ok: true; waitedMs: number } | { ok: false; reason: 'full' | 'timeout' | 'error'; retryAfterSec: number; waitedMs: number };

/**
 * Holds the slot just taken: a lease the sweeper can reclaim if this worker dies, and an exit hook
 * that gives the slot back when the request ends. The zones are looked up once, here, and the hook
 * closes over them.
 */
export function hold(d: QueueDict, model: string, leaseMs: number, seq: number): void {
  const l = ngx.shared.gw_leases as NgxSharedDict<number> | undefined; // leases(), inline
  if (!l) throw missingZone('gw_leases');
  // The lease key: the model, a tab, the admission's sequence number (model names hold no tab).
  // The admitted counter only grows while the zones live, so no two slots share a key: a shared
  // key would let one request's exit delete the other's lease and leak that slot.
  const key = model + '\t' + seq;
  const t0 = Date.now();
  l.set(key, t0 + leaseMs);
  njs.on('exit', function () {
    // njs 0.8: never touch `r` here (reading r.variables in an exit handler crashes the worker).
    if (l.delete(key)) release(d, model, Date.now() - t0);
  });
}

/** admitNow's answers besides a ticket (tickets start at 1). */
export const ADMIT_SLOT = 0;
export const ADMIT_FULL = -1;

/**
 * A request arrives at a capped model: ADMIT_SLOT when it took a slot at once (held until the
 * request ends), ADMIT_FULL when the queue is full, else its ticket, for waitForSlot. A number, and
 * no callback, for the common case: this runs on every request to a capped model.
 */
export function admitNow(model: string, tier: Tier, lim: AdmitLimits): number {
  const d = ngx.shared.gw_queue as unknown as QueueDict | undefined; // queueDict(), inline
  if (!d) throw missingZone('gw_queue');
  const a = arrive(d, model, tier, lim);
  if (a > 0) {
    hold(d, model, lim.slot_lease_ms, a);
    return ADMIT_SLOT;
  }
  return a === 0 ? ADMIT_FULL : -a; // core/queue.ts ARRIVE_FULL, else the ticket
}

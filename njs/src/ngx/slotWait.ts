/**
 * What a request does when its model's slots are taken: wait in the queue (polling for its turn), or
 * learn when to retry. A cold module (`cold` in njs/handlers.json): most requests find a free slot
 * (ngx/slots.ts admitNow), so this code is instantiated only in the VMs of requests that need it.
 */
import { ahead, leave, mayTry, retryAfterSec, Tier, tryAcquire } from '../core/queue';
import { AdmitLimits, AdmitResult, hold, queueDict } from './slots';

/** Retry-After (seconds) for a request the full queue turned away. */
export function fullRetryAfter(model: string, lim: AdmitLimits): number {
  return retryAfterSec(queueDict(), model, lim);
}

/**
 * The wait of a queued request (admitNow gave it `ticket`), polling for its turn; calls done() once,
 * with a slot held or with the reason there is none.
 */
export function waitForSlot(model: string, tier: Tier, lim: AdmitLimits, ticket: number, done: (res: AdmitResult) => void): void {
  const d = queueDict();
  const t0 = Date.now();
  const aging = Math.max(1000, Math.floor(lim.queue_timeout_ms / 2));
  // A timer callback runs outside the handler's guard(): an exception here must still answer.
  function attempt(): void {
    try {
      step();
    } catch (e) {
      ngx.log(ngx.ERR, 'gw: queue wait failed: ' + String(e));
      done({ ok: false, reason: 'error', retryAfterSec: 1, waitedMs: Date.now() - t0 });
    }
  }
  function step(): void {
    const now = Date.now();
    const waited = now - t0;
    const eligible = mayTry(d, model, tier, ticket, waited, aging, now);
    if (eligible && tryAcquire(d, model, lim.max_inflight)) {
      hold(d, model, lim.slot_lease_ms, leave(d, model, tier, true, waited));
      done({ ok: true, waitedMs: waited });
      return;
    }
    if (waited >= lim.queue_timeout_ms) {
      leave(d, model, tier, false, waited);
      done({ ok: false, reason: 'timeout', retryAfterSec: retryAfterSec(d, model, lim), waitedMs: waited });
      return;
    }
    // Waiters within a cap's reach of the head poll often, so each freed slot is taken within
    // ~5 ms even when several free at once; the rest poll rarely (CPU and njs memory: the callback
    // form allocates ~0.3 KB per poll, a fresh Promise per poll ~1.9 KB).
    setTimeout(attempt, eligible || ahead(d, model, tier, ticket) < lim.max_inflight ? 5 : 50);
  }
  attempt();
}

/**
 * Per-key rate limits over atomic shared-dict counters (resty.limit.count shape): increment first,
 * decide, roll back when refused so refused requests do not count. Two limits:
 *   rpm    sliding one-minute window, estimated from the current and previous fixed windows
 *          (Cloudflare's approximation: error well under 1 request at steady rates);
 *   burst  fixed one-second window: at most `burst` requests in any one second.
 * One increment per limit on an allowed request. The minute counter carries the previous window's
 * count as well, so the estimate needs no read of the previous counter:
 *   m:<id>:<window>  = prev * PREV + n   once the window's first request has folded prev in,
 *                    = UNSET + n         until then (created by incr's init),
 * where n counts this window's requests and prev the previous window's. The first request of a
 * window (the one whose increment created the counter) reads the previous counter once and adds
 * prev * PREV - UNSET; a request that sees UNSET still (another worker is folding, or died doing
 * it) reads the previous counter itself. A counter below PREV is a plain count (also one written
 * before this layout). Every value stays an integer below 2^53, exact in a double.
 */

export interface Counter {
  /** Atomic add; creates a missing entry at `init` (0 when left out) first. Returns the new value. */
  incr(key: string, delta: number, init?: number): number;
  get(key: string): number | undefined;
}

export type RateRefusal = { retryAfterSec: number; limit: 'rpm' | 'burst' };

// checkRate spells these out: a module-level constant is set again in every request's VM.
/** Weight of the previous window's count in a minute counter (2^24); n stays far below it (rpm <= 1e6). */
export const PREV = 16777216;
/** A minute counter's start before the previous window's count is folded in: -2^52. */
export const UNSET = -4503599627370496;

/** nowMs: integer milliseconds (Date.now()). null when allowed (and counted), else why not. */
export function checkRate(c: Counter, id: string, rpm: number, burst: number, nowMs: number): RateRefusal | null {
  if (burst > 0) {
    // Integer ms: whole seconds and minutes by arithmetic, not Math.floor (a call njs 0.8 pays for).
    const k = 'b:' + id + ':' + (nowMs - nowMs % 1000) / 1000;
    if (c.incr(k, 1) > burst) {
      c.incr(k, -1);
      return { retryAfterSec: 1, limit: 'burst' };
    }
  }
  if (rpm > 0) {
    const win = (nowMs - nowMs % 60000) / 60000;
    const into = (nowMs - win * 60000) / 60000;
    const cur = 'm:' + id + ':' + win;
    const v = c.incr(cur, 1, -4503599627370496); // UNSET
    let n: number;
    let prev: number;
    if (v >= 0) {
      n = v % 16777216; // PREV
      prev = (v - n) / 16777216;
    } else {
      n = v + 4503599627370496;
      const pv = c.get('m:' + id + ':' + (win - 1));
      prev = pv === undefined ? 0 : pv >= 0 ? pv % 16777216 : pv + 4503599627370496;
      if (n === 1) c.incr(cur, prev * 16777216 + 4503599627370496);
    }
    const estimate = prev * (1 - into) + n;
    if (estimate > rpm) {
      c.incr(cur, -1);
      // When will the estimate fall under the limit? The previous window's weight shrinks linearly.
      let wait = 60 - Math.floor(into * 60);
      if (prev > 0) {
        const need = (estimate - rpm) / prev; // fraction of a minute for prev's share to drop enough
        wait = Math.min(wait, Math.max(1, Math.ceil(need * 60)));
      }
      return { retryAfterSec: Math.max(1, wait), limit: 'rpm' };
    }
  }
  return null;
}

/**
 * Per-key rate limits over atomic shared-dict counters (resty.limit.count shape): increment first,
 * decide, roll back when refused so refused requests do not count. Two limits:
 *   rpm    sliding one-minute window, estimated from the current and previous fixed windows
 *          (Cloudflare's approximation: error well under 1 request at steady rates);
 *   burst  fixed one-second window: at most `burst` requests in any one second.
 */

export interface Counter {
  /** Atomic add; creates the entry at 0 first. Returns the new value. */
  incr(key: string, delta: number): number;
  get(key: string): number | undefined;
}

export type RateDecision = { ok: true } | { ok: false; retryAfterSec: number; limit: 'rpm' | 'burst' };

/** nowMs: integer milliseconds (Date.now()). */
export function checkRate(c: Counter, id: string, rpm: number, burst: number, nowMs: number): RateDecision {
  if (burst > 0) {
    // Integer ms: whole seconds and minutes by arithmetic, not Math.floor (a call njs 0.8 pays for).
    const sec = (nowMs - nowMs % 1000) / 1000;
    const k = 'b:' + id + ':' + sec;
    if (c.incr(k, 1) > burst) {
      c.incr(k, -1);
      return { ok: false, retryAfterSec: 1, limit: 'burst' };
    }
  }
  if (rpm > 0) {
    const win = (nowMs - nowMs % 60000) / 60000;
    const into = (nowMs - win * 60000) / 60000;
    const cur = 'm:' + id + ':' + win;
    const prev = c.get('m:' + id + ':' + (win - 1));
    const n = c.incr(cur, 1);
    const estimate = (prev !== undefined ? prev : 0) * (1 - into) + n;
    if (estimate > rpm) {
      c.incr(cur, -1);
      // When will the estimate fall under the limit? The previous window's weight shrinks linearly.
      let wait = 60 - Math.floor(into * 60);
      if (prev !== undefined && prev > 0) {
        const need = (estimate - rpm) / prev; // fraction of a minute for prev's share to drop enough
        wait = Math.min(wait, Math.max(1, Math.ceil(need * 60)));
      }
      return { ok: false, retryAfterSec: Math.max(1, wait), limit: 'rpm' };
    }
  }
  return { ok: true };
}

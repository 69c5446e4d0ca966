/**
 * A number shared dict (atomic across workers) as the plain interface the core modules decide
 * over: rate limits (core/rateLimit.ts `Counter`) and the wait queue (core/queue.ts `QueueDict`).
 * The dict itself is that interface (`incr(key, delta)` starts a missing key at 0, njs's default
 * init), so no wrapper object or extra call sits between the core and the zone: njs 0.8 pays for
 * both on every request (docs/benchmarks.md).
 */
import { QueueDict } from '../core/queue';
import { missingZone } from '../core/zones';

export function numberDict(zone: string): QueueDict {
  const d = ngx.shared[zone] as NgxSharedDict<number> | undefined;
  if (!d) throw missingZone(zone);
  return d as unknown as QueueDict;
}

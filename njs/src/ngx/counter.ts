/**
 * A number shared dict (atomic across workers) as the plain interface the core modules decide
 * over: rate limits (core/rateLimit.ts `Counter`) and the wait queue (core/queue.ts `QueueDict`).
 */
import { QueueDict } from '../core/queue';

export function numberDict(zone: string): QueueDict {
  const d = ngx.shared[zone] as NgxSharedDict<number> | undefined;
  if (!d) throw new Error('js_shared_dict_zone ' + zone + ' is missing: include nginx/gateway-http.conf');
  return {
    incr: function (key: string, delta: number) { return d.incr(key, delta, 0); },
    get: function (key: string) { return d.get(key); },
    set: function (key: string, value: number) { d.set(key, value); },
  };
}

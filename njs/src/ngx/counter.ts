/** The core `Counter` interface over a number shared dict (atomic across workers). */
import { Counter } from '../core/rateLimit';

export function dictCounter(zone: string): Counter {
  const d = ngx.shared[zone] as NgxSharedDict<number> | undefined;
  if (!d) throw new Error('js_shared_dict_zone ' + zone + ' is missing: include nginx/gateway-http.conf');
  return {
    incr: function (key: string, delta: number) { return d.incr(key, delta, 0); },
    get: function (key: string) { return d.get(key); },
  };
}

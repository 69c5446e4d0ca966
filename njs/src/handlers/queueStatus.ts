/**
 * gw.queueStatus: `js_content` in `location = /admin/queue` (admin-server.conf). Per capped model:
 * limits, in-flight, waiting (by tier), admitted, rejected (queue full), timed out, completed,
 * average wait and service time, from the gw_queue counters. 401/503 like every admin endpoint.
 */
import { TIER_ORDER, waitersOf } from '../core/queue';
import { adminHandler } from '../ngx/adminAuth';
import { replyJson } from '../ngx/reply';
import { queueDict } from '../ngx/slots';
import { routes } from '../ngx/table';

export const queueStatus = adminHandler('queueStatus', function (r: NginxHTTPRequest): void {
  const d = queueDict();
  const num = function (k: string) { const v = d.get(k); return v !== undefined ? v : 0; };
  const out: { [m: string]: unknown } = {};
  const names = Object.keys(routes.models);
  for (let i = 0; i < names.length; i++) {
    const m = names[i];
    const lim = routes.models[m];
    if (lim.max_inflight === 0) continue;
    const byTier: { [t: string]: number } = {};
    for (let t = 0; t < TIER_ORDER.length; t++) byTier[TIER_ORDER[t]] = waitersOf(d, m, TIER_ORDER[t]);
    const admitted = num('admitted:' + m);
    out[m] = {
      max_inflight: lim.max_inflight, max_queue: lim.max_queue, queue_timeout_ms: lim.queue_timeout_ms,
      inflight: num('inflight:' + m), waiting: byTier.high + byTier.normal + byTier.low, waiting_by_tier: byTier,
      admitted: admitted, rejected: num('rejected:' + m), timed_out: num('timeouts:' + m), completed: num('done:' + m),
      avg_wait_ms: admitted > 0 ? Math.round(num('wait_ms:' + m) / admitted) : 0,
      avg_service_ms: num('svc_ms:' + m),
    };
  }
  replyJson(r, 200, JSON.stringify({ object: 'queue_status', models: out }));
});

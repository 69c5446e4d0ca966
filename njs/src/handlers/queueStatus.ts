/**
 * gw.ops.queueStatus: `js_content` in `location = /admin/queue` (admin-server.conf). Per capped model:
 * limits, in-flight, waiting (by tier), admitted, rejected (queue full), timed out, completed,
 * average wait and service time, from the queue store (ngx/slots.ts). 401/503 like every admin endpoint.
 */
import { adminHandler } from '../ngx/adminAuth';
import { replyJson } from '../ngx/reply';
import { queueSnapshotOf } from '../ngx/slots';
import { routes } from '../ngx/table';

export const queueStatus = adminHandler('queueStatus', function (r: NginxHTTPRequest): void {
  const out: { [m: string]: unknown } = {};
  const names = Object.keys(routes.models);
  for (let i = 0; i < names.length; i++) {
    const m = names[i];
    const lim = routes.models[m];
    if (lim.max_inflight === 0) continue;
    const q = queueSnapshotOf(m);
    out[m] = {
      max_inflight: lim.max_inflight, max_queue: lim.max_queue, queue_timeout_ms: lim.queue_timeout_ms,
      inflight: q.inflight, waiting: q.waiting, waiting_by_tier: q.waiting_by_tier,
      admitted: q.admitted, rejected: q.rejected, timed_out: q.timed_out, completed: q.completed,
      avg_wait_ms: q.admitted > 0 ? Math.round(q.wait_ms / q.admitted) : 0,
      avg_service_ms: q.svc_ms,
    };
  }
  replyJson(r, 200, JSON.stringify({ object: 'queue_status', models: out }));
});

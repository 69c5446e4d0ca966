/**
 * gw.ops.queueSweep: `js_periodic gw.ops.queueSweep interval=1s;` (gateway-server.conf), on worker 0.
 * Reclaims slots whose lease expired (their request can no longer give them back: a crashed
 * worker), and skips queue tickets whose waiter died.
 */
import { sweepQueue } from '../core/queue';
import { makeLogger } from '../ngx/log';
import { queueDict, reclaimExpiredLeases } from '../ngx/slots';
import { routes } from '../ngx/table';

export function queueSweep(): void {
  const log = makeLogger(ngx);
  try {
    const d = queueDict();
    const now = Date.now();
    reclaimExpiredLeases(now, function (model) {
      log.warn('queue: reclaimed an expired slot lease of model "' + model + '"');
    });
    const models = Object.keys(routes.models);
    for (let i = 0; i < models.length; i++) {
      if (routes.models[models[i]].max_inflight === 0) continue;
      const skipped = sweepQueue(d, models[i], now, 3000);
      if (skipped > 0) log.warn('queue: skipped ' + skipped + ' dead waiter(s) of model "' + models[i] + '"');
    }
  } catch (e) {
    log.error('queueSweep failed: ' + String(e));
  }
}

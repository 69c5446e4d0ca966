/**
 * gw.queueSweep: `js_periodic gw.queueSweep interval=1s;` (gateway-server.conf), on worker 0.
 * Reclaims slots whose lease expired (their request can no longer give them back: a crashed
 * worker), skips queue tickets whose waiter died, and refreshes the waiting gauges.
 */
import { release, sweepQueue } from '../core/queue';
import { makeLogger } from '../ngx/log';
import { leases, queueDict } from '../ngx/slots';
import { routes } from '../ngx/table';

export function queueSweep(): void {
  const log = makeLogger(ngx);
  try {
    const d = queueDict();
    const l = leases();
    const now = Date.now();
    const items = l.items(1000000);
    for (let i = 0; i < items.length; i++) {
      const key = items[i][0];
      if (items[i][1] > now) continue;
      if (l.delete(key)) {
        const model = key.slice(0, key.indexOf('\t'));
        release(d, model, -1);
        log.warn('queue: reclaimed an expired slot lease of model "' + model + '"');
      }
    }
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

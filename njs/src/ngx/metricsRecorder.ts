/**
 * The metrics recorder handlers/requestEnd.ts calls once per finished request (log phase): adds
 * the request's counts to the `gw_metrics` zone. A no-op when the zone is not declared.
 */
import { RequestFacts, requestIncrements } from '../core/metrics';
import { discoveryDict } from './discoveryStore';
import { metricsDict } from './metricsStore';

/** Adds the counts of one finished request (core/metrics.ts) with atomic `incr`s. */
export function recordRequestMetrics(f: RequestFacts): void {
  const d = metricsDict();
  if (d === undefined) return;
  let dropped = 0;
  requestIncrements(f, function (key: string, delta: number): void {
    try {
      d.incr(key, delta, 0);
    } catch (e) {
      dropped++;
    }
  });
  if (dropped === 0) return;
  // njs 0.8: module variables live per request, so "warn once" is an `add` in the string zone.
  const once = discoveryDict();
  if (once !== undefined && once.add('w\nmetrics_full', '1')) {
    ngx.log(ngx.WARN, 'gw: the gw_metrics zone is full; ' + dropped + ' metric updates dropped (raise its size in discovery-http.conf)');
  }
}

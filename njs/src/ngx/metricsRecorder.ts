/**
 * The metrics recorder handlers/requestEnd.ts calls once per finished request (log phase): adds
 * the request's counts to the `gw_metrics` zone. A no-op when the zone is not declared.
 */
import { requestIncrements } from '../core/metrics';
import { discoveryDict } from './discoveryStore';
import { metricsDict } from './metricsStore';

/** Adds the counts of one finished request (core/metrics.ts; `p`: split $gw_end_facts) with atomic `incr`s. */
export function recordRequestMetrics(p: string[], keyId: string): void {
  const d = metricsDict();
  if (d === undefined) return;
  const dropped = requestIncrements(p, keyId, d);
  if (dropped === 0) return;
  // njs 0.8: module variables live per request, so "warn once" is an `add` in the string zone.
  const once = discoveryDict();
  if (once !== undefined && once.add('w\nmetrics_full', '1')) {
    ngx.log(ngx.WARN, 'gw: the gw_metrics zone is full; ' + dropped + ' metric updates dropped (raise its size in discovery-http.conf)');
  }
}

/**
 * The metrics recorder handlers/requestEnd.ts calls once per finished request (log phase): reads
 * the request's nginx variables and adds its counts to the `gw_metrics` zone. A no-op when the
 * zone is not declared.
 */
import { requestIncrements } from '../core/metrics';
import { discoveryDict } from './discoveryStore';
import { incrementer, metricsDict } from './metricsStore';

type Vars = Pick<NginxHTTPRequest, 'variables'>;

function v(r: Vars, name: string): string {
  const x = r.variables[name];
  return x !== undefined ? x : '';
}

export function recordRequestMetrics(r: Vars): void {
  const d = metricsDict();
  if (d === undefined) return;
  const model = v(r, 'gw_model');
  const errorCode = v(r, 'gw_error_code');
  // Not an API request (core/metrics.ts): skip the other variable reads (health checks, scrapes).
  if (model === '' && errorCode === '') return;
  const sink = incrementer(d);
  requestIncrements({
    model: model,
    keyId: v(r, 'gw_key_id'),
    errorCode: errorCode,
    status: v(r, 'status'),
    requestTime: v(r, 'request_time'),
    upstreamResponseTime: v(r, 'upstream_response_time'),
    upstreamHeaderTime: v(r, 'upstream_header_time'),
    stream: v(r, 'gw_stream'),
    queueMs: v(r, 'gw_queue_ms'),
    // Set by the structured-log feature when it is installed; "" (nothing recorded) otherwise.
    ttftMs: v(r, 'gw_ttft_ms'),
    promptTokens: v(r, 'gw_prompt_tokens'),
    completionTokens: v(r, 'gw_completion_tokens'),
  }, sink.add);
  const dropped = sink.dropped();
  if (dropped === 0) return;
  // njs 0.8: module variables live per request, so "warn once" is an `add` in the string zone.
  const once = discoveryDict();
  if (once !== undefined && once.add('w\nmetrics_full', '1')) {
    ngx.log(ngx.WARN, 'gw: the gw_metrics zone is full; ' + dropped + ' metric updates dropped (raise its size in discovery-http.conf)');
  }
}

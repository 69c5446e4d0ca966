/**
 * gw.requestEnd: the log-phase hook. `js_set $gw_request_end gw.requestEnd;` in
 * nginx/logging-http.conf, evaluated once per request by
 * `access_log /dev/null gw_null if=$gw_request_end;` (nginx.conf.example): a js_set is computed
 * when a log line needs it, i.e. after the response ended, on client aborts too (njs-facts §7).
 * It always returns "" so the /dev/null line is never written.
 * Each concern it runs is independent and guarded: one failing never skips the others.
 * Reads: see each concern (ledger: $gw_model, $gw_key_id, $status, $gw_*_tokens; metrics:
 * ngx/metricsRecorder.ts).
 * Keep every line at the same level as the other access_log lines, or nginx drops the inherited
 * ones; `access_log off` in a location disables this hook there.
 */
import { recordRequestMetrics } from '../ngx/metricsRecorder';
import { recordUsage } from '../ngx/usageStore';

type EndRequest = Pick<NginxHTTPRequest, 'variables' | 'error'>;

function run(r: EndRequest, name: string, fn: (r: EndRequest) => void): void {
  try {
    fn(r);
  } catch (e) {
    r.error('gw: ' + name + ' failed in requestEnd: ' + String(e && (e as Error).stack ? (e as Error).stack : e));
  }
}

export function requestEnd(r: EndRequest): string {
  run(r, 'ledger', recordUsage);
  run(r, 'metrics', recordRequestMetrics);
  return '';
}

/**
 * gw.requestEnd: the log-phase hook. `js_set $gw_request_end gw.requestEnd;` in
 * nginx/logging-http.conf, evaluated once per request by
 * `access_log /dev/null gw_null if=$gw_request_end;` (nginx.conf.example): a js_set is computed
 * when a log line needs it, i.e. after the response ended, on client aborts too (njs-facts §7).
 * It always returns "" so the /dev/null line is never written.
 * Reads $gw_usage_done (and sets it: a second evaluation, e.g. a `nocache` js_set, records
 * nothing), $gw_end_facts, one variable holding the facts the concerns need (core/endFacts.ts),
 * and $gw_key_id.
 * Each concern it runs is independent and guarded: one failing never skips the others.
 * Keep every line at the same level as the other access_log lines, or nginx drops the inherited
 * ones; `access_log off` in a location disables this hook there.
 */
import { EndFacts, parseEndFacts } from '../core/endFacts';
import { recordRequestMetrics } from '../ngx/metricsRecorder';
import { recordUsage } from '../ngx/usageStore';
import { errorText } from '../core/logText';

type EndRequest = Pick<NginxHTTPRequest, 'variables' | 'error'>;

function fail(r: EndRequest, name: string, e: unknown): void {
  r.error('gw: ' + name + ' failed in requestEnd: ' + errorText(e));
}

export function requestEnd(r: EndRequest): string {
  let f: EndFacts | null;
  try {
    const v = r.variables;
    if (v.gw_usage_done) return '';
    v.gw_usage_done = '1';
    f = parseEndFacts(v.gw_end_facts || '', v.gw_key_id || '');
  } catch (e) {
    fail(r, 'facts', e);
    return '';
  }
  if (f === null) return '';
  try {
    recordUsage(f);
  } catch (e) {
    fail(r, 'ledger', e);
  }
  try {
    recordRequestMetrics(f);
  } catch (e) {
    fail(r, 'metrics', e);
  }
  return '';
}

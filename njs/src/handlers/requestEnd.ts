/**
 * gw.requestEnd: the log-phase hook. `js_set $gw_request_end gw.requestEnd;` in
 * nginx/logging-http.conf, evaluated once per request by
 * `access_log /dev/null gw_null if=$gw_request_end;` (nginx.conf.example): a js_set is computed
 * when a log line needs it, i.e. after the response ended, on client aborts too (njs-facts §7).
 * It always returns "" so the /dev/null line is never written.
 * Reads $gw_end_facts, one variable holding the facts the concerns need (core/endFacts.ts), and
 * $gw_key_id; a second evaluation for the same request records nothing.
 * Each concern it runs is independent and guarded: one failing never skips the others.
 * Keep every line at the same level as the other access_log lines, or nginx drops the inherited
 * ones; `access_log off` in a location disables this hook there.
 */
import { splitEndFacts } from '../core/endFacts';
import { recordRequestMetrics } from '../ngx/metricsRecorder';
import { recordUsage } from '../ngx/usageStore';
import { errorText } from '../core/logText';

type EndRequest = Pick<NginxHTTPRequest, 'variables' | 'error'>;

function fail(r: EndRequest, name: string, e: unknown): void {
  r.error('gw: ' + name + ' failed in requestEnd: ' + errorText(e));
}

// The request last recorded: a second evaluation for the same request (a `nocache` js_set, a second
// access_log) records nothing. An identity test instead of a js_var flag: no variable read or
// write. A new request is always a new object, also where QuickJS keeps this module across requests.
let doneR: unknown = null;

export function requestEnd(r: EndRequest): string {
  if (r === doneR) return '';
  doneR = r;
  let p: string[] | null;
  let keyId: string;
  try {
    const v = r.variables;
    p = splitEndFacts(v.gw_end_facts || '');
    keyId = v.gw_key_id || '';
  } catch (e) {
    fail(r, 'facts', e);
    return '';
  }
  if (p === null) return '';
  try {
    recordUsage(p, keyId);
  } catch (e) {
    fail(r, 'ledger', e);
  }
  try {
    recordRequestMetrics(p, keyId);
  } catch (e) {
    fail(r, 'metrics', e);
  }
  return '';
}

/**
 * gw.ops.usageAdmin: `js_content` in `location = /admin/usage` and `location = /admin/usage/reset`
 * (nginx/usage-admin.conf). Needs the admin token (ngx/adminAuth.ts: `Authorization: Bearer …`).
 *   GET  /admin/usage[?day=YYYY-MM-DD&key_id=..&model=..]   counters per UTC day, key id and model
 *   POST /admin/usage/reset[?day=YYYY-MM-DD]                 delete one day, or everything
 * Returns: 200, 400 invalid_request (bad day), 401 invalid_admin_token, 503 admin_disabled,
 * 405 method_not_allowed, 404 not_found, 500 internal_error (also when the gw_usage zone is missing).
 */
import { gwError } from '../core/errors';
import { isDay, LedgerFilter } from '../core/usageLedger';
import { adminHandler } from '../ngx/adminAuth';
import { replyError, replyJson } from '../ngx/reply';
import { readUsage, resetUsage, USAGE_ZONE } from '../ngx/usageStore';
import { missingZone } from '../core/zones';

function arg(r: NginxHTTPRequest, name: string): string | undefined {
  const v = r.args[name];
  if (v === undefined) return undefined;
  return typeof v === 'string' ? v : String(v[0]);
}

export const usageAdmin = adminHandler('usageAdmin', function (r: NginxHTTPRequest): void {
  const reset = r.uri === '/admin/usage/reset';
  if (!reset && r.uri !== '/admin/usage') {
    replyError(r, gwError('not_found', 'Unknown admin endpoint. See docs/observability.md#logs-and-usage.'));
    return;
  }
  const want = reset ? 'POST' : 'GET';
  if (r.method !== want) {
    r.headersOut['Allow'] = want;
    replyError(r, gwError('method_not_allowed', 'Use ' + want + ' for ' + r.uri + '.'));
    return;
  }
  const day = arg(r, 'day');
  if (day !== undefined && !isDay(day)) {
    replyError(r, gwError('invalid_request', 'day must be a UTC date, YYYY-MM-DD.'));
    return;
  }
  if (reset) {
    const n = resetUsage(day);
    if (n === null) throw missingZone(USAGE_ZONE);
    replyJson(r, 200, JSON.stringify({ object: 'usage.reset', day: day !== undefined ? day : null, deleted: n }));
    return;
  }
  const f: LedgerFilter = {};
  if (day !== undefined) f.day = day;
  const key = arg(r, 'key_id');
  if (key !== undefined) f.key_id = key;
  const model = arg(r, 'model');
  if (model !== undefined) f.model = model;
  const u = readUsage(f);
  if (u === null) throw missingZone(USAGE_ZONE);
  replyJson(r, 200, JSON.stringify({ object: 'usage', data: u.rows, zone: { name: USAGE_ZONE, capacity: u.capacity, free: u.free } }));
});

/**
 * gw.route: `js_content` in `location /v1/` (POST endpoints that carry a model).
 *
 * Reads the body (nginx has already read it into memory before js_content runs), finds the model
 * (JSON.parse up to 8 KB, the byte scanner above; the form-field scanner for multipart), resolves it in the routing
 * table, and hands the request to nginx's proxy through an internal redirect:
 *   - @gw_upstream          the original body, unchanged (nginx re-sends it byte for byte)
 *   - @gw_upstream_rewrite  an alias was used: the body with "model" set to the canonical name
 * Reads: $gw_key_models and $gw_auth_mode (set by gw.auth before the body was read).
 * Writes: $gw_model, $gw_model_requested, $gw_upstream, $gw_stream, $gw_upstream_auth,
 * $gw_body (rewrite only), $gw_error_code.
 * Returns: 400 invalid_json | missing_model | invalid_model | invalid_multipart, 404 model_not_found
 * (also for a model the key may not use: the answer does not reveal which models exist),
 * 405 method_not_allowed, 413 request_too_large, 429 queue_full | queue_timeout (with Retry-After,
 * for models with max_inflight), 500 internal_error; everything else is the backend's.
 * Models with a max_inflight wait for a slot first (ngx/slots.ts): async, via setTimeout polling.
 */
import { sharedRoutes } from '../ngx/table';
import { modelAllowed } from '../core/access';
import { gwError, modelNotFound } from '../core/errors';
import { findModel, PARSE_WHOLE_MAX, scanModel } from '../core/modelScan';
import { bodyKind, scanMultipartModel } from '../core/multipart';
import { tierOf } from '../core/queue';
import { canonicalModel, RouteTable, UpstreamInfo, upstreamBearer } from '../core/routes';
import { RETRY_AFTER_S } from '../core/health';
import { bodyUnreadable, readBody } from '../ngx/body';
import { replyFailed } from '../ngx/failed';
import { modelHealthy } from '../ngx/health';
import { replyError } from '../ngx/reply';
import { ADMIT_FULL, ADMIT_SLOT, admitNow } from '../ngx/slots';
import { fullRetryAfter, waitForSlot } from '../ngx/slotWait';
import { GwVars, setVarBytes } from '../ngx/vars';

/**
 * The Authorization header for the backend: its own key when the upstream names one (api_key_env),
 * else nothing when the gateway checks keys (the client's key is the gateway's, not the backend's),
 * else the client's header as it came (auth off: the client may be talking to vLLM's --api-key).
 */
function upstreamAuth(r: NginxHTTPRequest, t: RouteTable, upstream: string, u: UpstreamInfo | undefined, authOff: boolean): string {
  // process.env only for an upstream that names a key variable (most name none). `u` is
  // t.upstreams[upstream], indexed directly: the name comes from the table, and whatever a
  // prototype could answer has no api_key_env.
  const own = u !== undefined && u.api_key_env ? upstreamBearer(t, upstream, process.env) : '';
  if (own !== '') return own;
  if (authOff) {
    const h = r.headersIn['Authorization'];
    return h !== undefined ? h : '';
  }
  return '';
}

export function route(r: NginxHTTPRequest): void {
  // One function with its try/catch around the whole request (no closure per request, and no
  // second call: njs 0.8 pays for each).
  try {
    const v = r.variables as unknown as GwVars;
    if (r.method !== 'POST') {
      r.headersOut['Allow'] = 'POST';
      replyError(r, gwError('method_not_allowed', 'Use POST for ' + r.uri + '.'));
      return;
    }
    const buf = readBody(r);
    if (buf === null) {
      replyError(r, bodyUnreadable());
      return;
    }
    const ct = r.headersIn['Content-Type'];
    let boundary: string | null = null;
    // No Content-Type or exactly application/json is JSON (bodyKind agrees), without building its answer.
    if (ct !== undefined && ct !== 'application/json') {
      const kind = bodyKind(ct);
      if (kind.kind === 'invalid') {
        replyError(r, gwError('invalid_multipart', kind.detail));
        return;
      }
      if (kind.kind === 'multipart') boundary = kind.boundary;
    }
    // A small JSON body is read a second time as text (r.requestText): njs 0.8 makes that far cheaper
    // than decoding the Buffer, and findModel parses it whole.
    const scan = boundary !== null ? scanMultipartModel(buf, boundary)
      : findModel(buf, buf.length > 0 && buf.length <= PARSE_WHOLE_MAX ? r.requestText : undefined);
    if (!scan.ok) {
      replyError(r, gwError(scan.error, scan.detail));
      return;
    }
    const requested = scan.model;
    v.gw_model_requested = requested;
    // $gw_stream is "0" unless set (gateway-http.conf): written only for a stream.
    if (scan.stream) v.gw_stream = '1';
    const t = sharedRoutes();
    const model = canonicalModel(t, requested);
    const keyModels = v.gw_key_models;
    if (model === '' || !modelAllowed(keyModels !== undefined ? keyModels : '', model, requested)) {
      replyError(r, modelNotFound(requested));
      return;
    }
    const mr = t.models[model];
    // Each member of the preloaded table read once: every read of it costs.
    const up = mr.upstream;
    v.gw_model = model;
    v.gw_upstream = up;
    if (!modelHealthy(up)) {
      r.headersOut['Retry-After'] = String(RETRY_AFTER_S);
      replyError(r, gwError('model_unavailable'));
      return;
    }
    const authOff = v.gw_auth_mode === 'off';
    // $gw_upstream_auth is empty unless set: nothing to write when the gateway checks keys and the
    // upstream names no key of its own (the common case, told without a call).
    const u = t.upstreams[up];
    if (authOff || (u !== undefined && u.api_key_env)) {
      const upAuth = upstreamAuth(r, t, up, u, authOff);
      if (upAuth !== '') v.gw_upstream_auth = upAuth;
    }
    let target = '@gw_upstream';
    if (model !== requested) {
      // An alias (canonicalModel answers a model's own name first). The backend serves the canonical
      // name only; splice it over the alias. This copies the body once, so aliases cost memory on
      // huge bodies (docs/configuration.md).
      // Spliced as bytes, so a multipart body's binary file survives untouched.
      // Duplicate "model" members and parts are refused, so this replaces the one and only value.
      const name = boundary !== null ? model : JSON.stringify(model);
      const at = scan.start >= 0 ? scan : scanModel(buf); // small bodies were parsed, not scanned
      if (!at.ok) {
        // Cannot happen (findModel hands every body it accepts to the same rule); a 400, never a 500.
        replyError(r, gwError(at.error, at.detail));
        return;
      }
      setVarBytes(r, 'gw_body', Buffer.concat([buf.subarray(0, at.start), Buffer.from(name), buf.subarray(at.end)]));
      target = '@gw_upstream_rewrite';
    }
    if (mr.max_inflight === 0) {
      r.internalRedirect(target);
      return;
    }
    // The key's tier; without API keys (a trusted network) the client may say it in X-Priority.
    let tierName = v.gw_tier;
    if (authOff) {
      const h = r.headersIn['X-Priority'];
      if (h !== undefined) tierName = h.trim().toLowerCase();
    }
    const tier = tierOf(tierName !== undefined ? tierName : '');
    const got = admitNow(model, tier, mr);
    if (got === ADMIT_SLOT) {
      // $gw_queue_ms stays "0", its default (gateway-http.conf).
      v.gw_queue_result = 'slot';
      r.internalRedirect(target);
      return;
    }
    if (got === ADMIT_FULL) {
      v.gw_queue_result = 'full';
      r.headersOut['Retry-After'] = String(fullRetryAfter(model, mr));
      replyError(r, gwError('queue_full'));
      return;
    }
    waitForSlot(model, tier, mr, got, function (a) {
      if (a.waitedMs !== 0) v.gw_queue_ms = String(a.waitedMs);
      if (a.ok) {
        v.gw_queue_result = a.waitedMs > 0 ? 'waited' : 'slot';
        r.internalRedirect(target);
        return;
      }
      v.gw_queue_result = a.reason;
      if (a.reason === 'error') {
        replyError(r, gwError('internal_error'));
        return;
      }
      r.headersOut['Retry-After'] = String(a.retryAfterSec);
      replyError(r, gwError(a.reason === 'full' ? 'queue_full' : 'queue_timeout'));
    });
  } catch (e) {
    replyFailed(r, 'route', e);
  }
}

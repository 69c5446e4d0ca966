/**
 * gw.admin: `js_content` in `location /admin/keys` (admin-server.conf, its own server{} / port).
 *   POST   /admin/keys               create → 201 {..., "key": "<secret, shown once>"}
 *   GET    /admin/keys               list (no secrets, no hashes)
 *   GET    /admin/keys/{id}          one key
 *   PATCH  /admin/keys/{id}          update label, models, rpm, burst, tier, expires_at/expires_in, disabled
 *   DELETE /admin/keys/{id}          revoke (takes effect at once in every worker)
 *   POST   /admin/keys/{id}/rotate   new secret for the same id and settings; the old one stops working
 * Returns: 401 invalid_admin_token, 503 admin_disabled, 400 invalid_json | invalid_request,
 * 404 key_not_found | not_found, 405 method_not_allowed, 409 key_read_only, 413 (nginx), 500.
 */
import { applyUpdate, KeyRecord, newRecord, publicView, validateKeyInput } from '../core/keys';
import { gwError } from '../core/errors';
import { adminHandler } from '../ngx/adminAuth';
import { ensureLoaded, findById, list, nowSec, persist, put, randomToken, remove, sha256hex } from '../ngx/keyStore';
import { replyError, replyJson } from '../ngx/reply';

function parseBody(r: NginxHTTPRequest): { ok: true; value: unknown } | { ok: false } {
  let text = '';
  try {
    text = r.requestText !== undefined ? r.requestText : '';
  } catch (e) {
    return { ok: false };
  }
  if (text === '') return { ok: false };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (e) {
    return { ok: false };
  }
}

/** The validated key fields of the body (create, or update when partial), or null once a 400 was sent. */
function keyInput(r: NginxHTTPRequest, partial: boolean): { [k: string]: unknown } | null {
  const body = parseBody(r);
  if (!body.ok) {
    replyError(r, gwError('invalid_json', 'The body must be a JSON object.'));
    return null;
  }
  const v = validateKeyInput(body.value, partial, nowSec());
  if (!v.ok) {
    replyError(r, gwError('invalid_request', v.message));
    return null;
  }
  return v.value;
}

function newSecret(): string {
  return 'sk-gw-' + randomToken(24);
}

/**
 * Answers a change that is already in the shared dict (so in force in every worker). If it could
 * not be written to the state file the answer still goes out, with "persisted": false: a created
 * key's secret must reach the caller, who can rotate or revoke it once the disk is fixed.
 */
function saved(r: NginxHTTPRequest, status: number, body: { [k: string]: unknown }): void {
  try {
    if (!persist()) body.persisted = false; // no GW_STATE_DIR: the change lasts until nginx restarts
  } catch (e) {
    r.error('gw: admin: could not write the key state file (GW_STATE_DIR must be writable by the nginx workers): ' + String(e));
    body.persisted = false;
  }
  replyJson(r, status, JSON.stringify(body));
}

export const admin = adminHandler('admin', function (r: NginxHTTPRequest): void {
  const problems = ensureLoaded();
  for (let i = 0; i < problems.length; i++) r.warn('gw: keys: ' + problems[i]);
  const m = /^\/admin\/keys(?:\/([A-Za-z0-9_.-]{1,64})(\/rotate)?)?\/?$/.exec(r.uri);
  if (!m) {
    replyError(r, gwError('not_found', 'Unknown admin endpoint. See README#api-keys.'));
    return;
  }
  const id = m[1];
  const rotate = m[2] !== undefined;
  const method = r.method;

  if (id === undefined) {
    if (method === 'GET') {
      replyJson(r, 200, JSON.stringify({ object: 'list', data: list().map(publicView) }));
      return;
    }
    if (method !== 'POST') {
      r.headersOut['Allow'] = 'GET, POST';
      replyError(r, gwError('method_not_allowed'));
      return;
    }
    const input = keyInput(r, false);
    if (input === null) return;
    const kid = typeof input.id === 'string' ? input.id : 'key_' + randomToken(9).replace(/[-_]/g, 'x');
    if (findById(kid) !== null) {
      replyError(r, gwError('invalid_request', 'A key with id "' + kid + '" already exists.'));
      return;
    }
    const secret = newSecret();
    const rec = newRecord(input, kid, sha256hex(secret), nowSec(), 'admin');
    put(rec);
    const out = publicView(rec);
    out.key = secret;
    saved(r, 201, out);
    return;
  }

  const rec: KeyRecord | null = findById(id);
  if (rec === null) {
    replyError(r, gwError('key_not_found'));
    return;
  }
  if (rotate) {
    if (method !== 'POST') {
      r.headersOut['Allow'] = 'POST';
      replyError(r, gwError('method_not_allowed'));
      return;
    }
  } else if (method === 'GET') {
    replyJson(r, 200, JSON.stringify(publicView(rec)));
    return;
  } else if (method !== 'PATCH' && method !== 'DELETE') {
    r.headersOut['Allow'] = 'GET, PATCH, DELETE';
    replyError(r, gwError('method_not_allowed'));
    return;
  }
  if (rec.source !== 'admin') {
    replyError(r, gwError('key_read_only'));
    return;
  }
  if (rotate) {
    const secret = newSecret();
    const next = applyUpdate(rec, {});
    next.hash = sha256hex(secret);
    put(next);
    const out = publicView(next);
    out.key = secret;
    saved(r, 200, out);
    return;
  }
  if (method === 'DELETE') {
    remove(rec);
    saved(r, 200, { id: rec.id, object: 'api_key', deleted: true });
    return;
  }
  const input = keyInput(r, true);
  if (input === null) return;
  const next = applyUpdate(rec, input);
  put(next);
  saved(r, 200, publicView(next));
});

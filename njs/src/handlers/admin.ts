/**
 * gw.admin: `js_content` in `location /admin/keys` (admin-server.conf, its own server{} / port).
 *   POST   /admin/keys               create → 201 {..., "key": "<secret, shown once>"}
 *   GET    /admin/keys               list (no secrets, no hashes)
 *   GET    /admin/keys/{id}          one key
 *   PATCH  /admin/keys/{id}          update label, models, rpm, burst, tier, expires_at/expires_in, disabled
 *   DELETE /admin/keys/{id}          revoke (takes effect at once in every worker)
 *   POST   /admin/keys/{id}/rotate   new secret for the same id and settings; the old one stops working
 * Every change runs under the key store's lock and is in force in every worker, and in the state
 * file, before it is answered (docs/api-keys.md#guarantees). Ids: core/keys.ts validKeyId.
 * Returns: 401 invalid_admin_token, 503 admin_disabled, 400 invalid_json | invalid_request,
 * 404 key_not_found | not_found, 405 method_not_allowed, 409 key_read_only, 413 (nginx), 500.
 */
import { applyUpdate, ID_RULE, KeyRecord, newRecord, publicView, validateKeyInput, validKeyId } from '../core/keys';
import { gwError, GwError } from '../core/errors';
import { adminHandler } from '../ngx/adminAuth';
import { create, ensureLoaded, exclusive, findById, list, loadIfNeeded, LOCK_WAIT_MS, nowSec, persist, randomToken, revoke, sha256hex, update } from '../ngx/keyStore';
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

type Outcome = { status: number; body: { [k: string]: unknown } } | { error: GwError };

/**
 * Writes the state file for a change that is already in the shared dict (so in force in every
 * worker). If that fails the answer still goes out, with "persisted": false: a created key's
 * secret must reach the caller, who can rotate or revoke it once the disk is fixed.
 */
function saved(r: NginxHTTPRequest, status: number, body: { [k: string]: unknown }): Outcome {
  try {
    if (!persist()) body.persisted = false; // no GW_STATE_DIR: the change lasts until nginx restarts
  } catch (e) {
    r.error('gw: admin: could not write the key state file (GW_STATE_DIR must be writable by the nginx workers and by nobody else): ' + String(e));
    body.persisted = false;
  }
  return { status: status, body: body };
}

/**
 * Runs one change under the key store's lock (keyStore.ts): loads the store if this is a cold
 * start, re-reads the key there, changes it and writes the state file before anyone else may
 * change anything; then answers.
 */
function change(r: NginxHTTPRequest, fn: () => Outcome): void {
  exclusive(LOCK_WAIT_MS, function (): Outcome {
    const problems = loadIfNeeded();
    for (let i = 0; i < problems.length; i++) r.warn('gw: keys: ' + problems[i]);
    return fn();
  }).then(function (res) {
    if (!res.ok) {
      replyError(r, gwError('internal_error', 'The key store stayed locked by another change for ' + LOCK_WAIT_MS / 1000 + ' s; nothing was changed. Retry.'));
      return;
    }
    const out = res.value;
    if ('error' in out) replyError(r, out.error);
    else replyJson(r, out.status, JSON.stringify(out.body));
  }).catch(function (e) {
    r.error('gw: admin failed: ' + String(e && (e as Error).stack ? (e as Error).stack : e));
    replyError(r, gwError('internal_error'));
  });
}

function createKey(r: NginxHTTPRequest): void {
  const input = keyInput(r, false);
  if (input === null) return;
  const kid = typeof input.id === 'string' ? input.id : 'key_' + randomToken(9).replace(/[-_]/g, 'x');
  const secret = newSecret();
  const rec = newRecord(input, kid, sha256hex(secret), nowSec(), 'admin');
  change(r, function (): Outcome {
    if (!create(rec)) return { error: gwError('invalid_request', 'A key with id "' + kid + '" already exists.') };
    const out = publicView(rec);
    out.key = secret;
    return saved(r, 201, out);
  });
}

/** The id's current record, or the error to answer with (gone, or owned by GW_KEYS_FILE). */
function writable(id: string): KeyRecord | GwError {
  const rec = findById(id);
  if (rec === null) return gwError('key_not_found');
  if (rec.source !== 'admin') return gwError('key_read_only');
  return rec;
}

function isError(x: KeyRecord | GwError): x is GwError {
  return (x as GwError).body !== undefined && (x as GwError).status !== undefined;
}

export const admin = adminHandler('admin', function (r: NginxHTTPRequest): void {
  const m = /^\/admin\/keys(?:\/([^/]+)(\/rotate)?)?\/?$/.exec(r.uri);
  if (!m) {
    replyError(r, gwError('not_found', 'Unknown admin endpoint. See docs/api-keys.md.'));
    return;
  }
  const id = m[1];
  const rotate = m[2] !== undefined;
  const method = r.method;
  if (id !== undefined && !validKeyId(id)) {
    replyError(r, gwError('invalid_request', 'Key ids are ' + ID_RULE + '.'));
    return;
  }

  if (id === undefined) {
    if (method === 'GET') {
      const problems = ensureLoaded();
      for (let i = 0; i < problems.length; i++) r.warn('gw: keys: ' + problems[i]);
      replyJson(r, 200, JSON.stringify({ object: 'list', data: list().map(publicView) }));
      return;
    }
    if (method !== 'POST') {
      r.headersOut['Allow'] = 'GET, POST';
      replyError(r, gwError('method_not_allowed'));
      return;
    }
    createKey(r);
    return;
  }

  if (rotate) {
    if (method !== 'POST') {
      r.headersOut['Allow'] = 'POST';
      replyError(r, gwError('method_not_allowed'));
      return;
    }
    const secret = newSecret();
    const hash = sha256hex(secret);
    change(r, function (): Outcome {
      const rec = writable(id);
      if (isError(rec)) return { error: rec };
      const next = applyUpdate(rec, {});
      next.hash = hash;
      if (!update(next)) return { error: gwError('key_not_found') };
      const out = publicView(next);
      out.key = secret;
      return saved(r, 200, out);
    });
    return;
  }
  if (method === 'GET') {
    const problems = ensureLoaded();
    for (let i = 0; i < problems.length; i++) r.warn('gw: keys: ' + problems[i]);
    const rec = findById(id);
    if (rec === null) replyError(r, gwError('key_not_found'));
    else replyJson(r, 200, JSON.stringify(publicView(rec)));
    return;
  }
  if (method === 'DELETE') {
    change(r, function (): Outcome {
      const rec = writable(id);
      if (isError(rec)) return { error: rec };
      revoke(id);
      return saved(r, 200, { id: id, object: 'api_key', deleted: true });
    });
    return;
  }
  if (method !== 'PATCH') {
    r.headersOut['Allow'] = 'GET, PATCH, DELETE';
    replyError(r, gwError('method_not_allowed'));
    return;
  }
  const input = keyInput(r, true);
  if (input === null) return;
  change(r, function (): Outcome {
    const rec = writable(id);
    if (isError(rec)) return { error: rec };
    const next = applyUpdate(rec, input);
    if (!update(next)) return { error: gwError('key_not_found') };
    return saved(r, 200, publicView(next));
  });
});

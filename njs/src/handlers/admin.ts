/**
 * gw.ops.admin: `js_content` in `location /admin/keys` (admin-server.conf, its own server{} / port).
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
import { create, ensureLoaded, exclusive, findById, list, loadIfNeeded, LOCK_WAIT_MS, nowSec, persist, randomToken, revoke, sha256hex, update, warnProblems } from '../ngx/keyStore';
import { logFailure, requestLogger } from '../ngx/log';
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
    requestLogger(r).error('admin: could not write the key state file (GW_STATE_DIR must be writable by the nginx workers and by nobody else): ' + String(e));
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
    warnProblems(requestLogger(r), loadIfNeeded());
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
    logFailure(requestLogger(r), 'admin', e);
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

function listKeys(r: NginxHTTPRequest): void {
  warnProblems(requestLogger(r), ensureLoaded());
  replyJson(r, 200, JSON.stringify({ object: 'list', data: list().map(publicView) }));
}

function getKey(r: NginxHTTPRequest, id: string): void {
  warnProblems(requestLogger(r), ensureLoaded());
  const rec = findById(id);
  if (rec === null) replyError(r, gwError('key_not_found'));
  else replyJson(r, 200, JSON.stringify(publicView(rec)));
}

function rotateKey(r: NginxHTTPRequest, id: string): void {
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
}

function deleteKey(r: NginxHTTPRequest, id: string): void {
  change(r, function (): Outcome {
    const rec = writable(id);
    if (isError(rec)) return { error: rec };
    revoke(id);
    return saved(r, 200, { id: id, object: 'api_key', deleted: true });
  });
}

function patchKey(r: NginxHTTPRequest, id: string): void {
  const input = keyInput(r, true);
  if (input === null) return;
  change(r, function (): Outcome {
    const rec = writable(id);
    if (isError(rec)) return { error: rec };
    const next = applyUpdate(rec, input);
    if (!update(next)) return { error: gwError('key_not_found') };
    return saved(r, 200, publicView(next));
  });
}

type Method = (r: NginxHTTPRequest, id: string) => void;

/** The methods of each admin resource, in the order the Allow header names them. */
const COLLECTION: { [method: string]: Method } = { GET: listKeys, POST: createKey };
const ROTATE: { [method: string]: Method } = { POST: rotateKey };
const ITEM: { [method: string]: Method } = { GET: getKey, PATCH: patchKey, DELETE: deleteKey };

function dispatch(r: NginxHTTPRequest, methods: { [method: string]: Method }, id: string): void {
  if (!Object.prototype.hasOwnProperty.call(methods, r.method)) {
    r.headersOut['Allow'] = Object.keys(methods).join(', ');
    replyError(r, gwError('method_not_allowed'));
    return;
  }
  methods[r.method](r, id);
}

export const admin = adminHandler('admin', function (r: NginxHTTPRequest): void {
  const m = /^\/admin\/keys(?:\/([^/]+)(\/rotate)?)?\/?$/.exec(r.uri);
  if (!m) {
    replyError(r, gwError('not_found', 'Unknown admin endpoint. See docs/api-keys.md.'));
    return;
  }
  const id = m[1];
  if (id === undefined) {
    dispatch(r, COLLECTION, '');
    return;
  }
  if (!validKeyId(id)) {
    replyError(r, gwError('invalid_request', 'Key ids are ' + ID_RULE + '.'));
    return;
  }
  dispatch(r, m[2] !== undefined ? ROTATE : ITEM, id);
});

/**
 * API keys: record shape, validation of admin input, the authentication decision, and parsing of
 * the client's key from its headers. The store keeps only sha256(key); the key itself exists in
 * the client's hands and, once, in the admin API's create/rotate answer.
 */

import { gwError, GwError } from './errors';
import { Tier, TIER_ORDER } from './queue';

export interface KeyRecord {
  /** Public id, safe to log and to name the key in the admin API. */
  id: string;
  /** sha256 hex of the secret key. */
  hash: string;
  label: string;
  /** "*" or the model names (canonical or alias) the key may use. */
  models: '*' | string[];
  /** Requests per minute (sliding window); 0 = unlimited. */
  rpm: number;
  /** Requests allowed in any one second on top of the per-minute pace; 0 = no per-second cap. */
  burst: number;
  tier: Tier;
  /** Unix seconds after which the key is refused; 0 = never. */
  expires_at: number;
  disabled: boolean;
  created_at: number;
  /** "file": from GW_KEYS_FILE (read-only through the admin API); "admin": made through the API. */
  source: 'file' | 'admin';
}

/** The key of a non-empty `Authorization` value ("Bearer <key>"), or null when it is malformed. */
export function bearerKey(authorization: string): string | null {
  // The letters are spelled out instead of the `i` flag, which in njs also lets the class match
  // non-ASCII case variants (U+017F folds to "s"). The key sits between blanks that trim() removes.
  // (Regex literals sit in the functions that use them: a module-level one is built in every request's VM.)
  return /^[Bb][Ee][Aa][Rr][Ee][Rr][ \t]+[\x21-\x7e]{1,512}[ \t]*$/.test(authorization) ? authorization.slice(6).trim() : null;
}

/**
 * The request path's first guess at the key of an `Authorization` value: what follows "Bearer "
 * as it stands, unless that could be a signed token (starts with "e" or "E"); null otherwise. It is
 * the key bearerKey finds whenever it is well-formed (wellFormedKey), and a key the gateway made
 * always is: a hit on a gateway-made key, or on a well-formed one, skips bearerKey's regex.
 */
export function plainBearer(authorization: string): string | null {
  // slice and indexing rather than startsWith and charCodeAt: in njs 0.8 each built-in method a
  // request's VM touches costs once more, and slice is needed anyway.
  const c = authorization[7];
  return authorization.slice(0, 7) === 'Bearer ' && c !== 'e' && c !== 'E' ? authorization.slice(7) : null;
}

/** Whether `key` is what bearerKey and headerKey accept: 1 to 512 printable ASCII characters. */
export function wellFormedKey(key: string): boolean {
  return key.length > 0 && key.length <= 512 && !/[^\x21-\x7e]/.test(key);
}

/**
 * The key of an `api-key` or `x-api-key` value (Azure-style clients): "" when there is none, null
 * when it is malformed.
 */
export function headerKey(value: string | undefined): string | null {
  if (value === undefined || value === '') return '';
  const v = value.trim();
  return wellFormedKey(v) || v === '' ? v : null;
}

/**
 * The client's key from `Authorization: Bearer`, `api-key` or `x-api-key` (OpenAI and Azure-style
 * clients send each), in that order of precedence. Returns "" when none is present, null when one
 * is present but malformed. The request path (handlers/auth.ts) applies the same precedence with
 * bearerKey and headerKey, reading a header only when the ones before it are absent.
 */
export function presentedKey(authorization: string | undefined, apiKey: string | undefined, xApiKey: string | undefined): string | null {
  if (authorization !== undefined && authorization !== '') return bearerKey(authorization);
  return headerKey(apiKey !== undefined && apiKey !== '' ? apiKey : xApiKey);
}

/** The 401 for a presented key: none (""), malformed (null), or not a live key. */
export function keyRefusal(presented: string | null): GwError {
  if (presented === '') return gwError('missing_api_key', 'You did not provide an API key. Send it as "Authorization: Bearer <key>".');
  if (presented === null) return gwError('invalid_api_key', 'The API key header is malformed. Send "Authorization: Bearer <key>".');
  // One message for unknown, revoked, disabled and expired keys: the answer must not help guessing.
  return gwError('invalid_api_key', 'Incorrect API key provided, or the key was revoked or has expired.');
}

/** What the admin API shows of a record: everything but the hash. */
export function publicView(k: KeyRecord): { [k: string]: unknown } {
  return {
    id: k.id, object: 'api_key', label: k.label, models: k.models, rpm: k.rpm, burst: k.burst, tier: k.tier,
    expires_at: k.expires_at > 0 ? k.expires_at : null, disabled: k.disabled, created_at: k.created_at, source: k.source,
  };
}

export type Validated<T> = { ok: true; value: T } | { ok: false; message: string };

/**
 * Key ids: a letter or digit, then up to 63 letters, digits, ".", "_" or "-". They appear in
 * /admin/keys/<id> and in logs, so "." and ".." (which nginx folds out of a URI) and anything
 * needing escapes are impossible by construction.
 */
// A literal, not new RegExp(): njs 0.8 runs this module's top level in every request's VM, and a
// literal is compiled once, with the bundle.
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const ID_RULE = 'a letter or digit followed by up to 63 letters, digits, ".", "_" or "-"';

export function validKeyId(id: unknown): boolean {
  return typeof id === 'string' && ID_RE.test(id);
}
const FIELDS = ['id', 'label', 'models', 'rpm', 'burst', 'tier', 'expires_at', 'expires_in', 'disabled'];

function isInt(v: unknown, min: number, max: number): boolean {
  return typeof v === 'number' && v % 1 === 0 && v >= min && v <= max;
}

/**
 * Validates an admin create (partial=false) or update (partial=true) body, already JSON-parsed.
 * Returns the fields to set; unknown fields are an error so typos do not pass silently.
 */
export function validateKeyInput(body: unknown, partial: boolean, nowSec: number): Validated<{ [k: string]: unknown }> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return { ok: false, message: 'The body must be a JSON object.' };
  const b = body as { [k: string]: unknown };
  const out: { [k: string]: unknown } = {};
  const keys = Object.keys(b);
  for (let i = 0; i < keys.length; i++) {
    if (FIELDS.indexOf(keys[i]) < 0) return { ok: false, message: 'Unknown field "' + keys[i].slice(0, 40) + '". Allowed: ' + FIELDS.join(', ') + '.' };
  }
  if (b.id !== undefined) {
    if (partial) return { ok: false, message: '"id" cannot be changed.' };
    if (!validKeyId(b.id)) return { ok: false, message: '"id" must be ' + ID_RULE + '.' };
    out.id = b.id;
  }
  if (b.label !== undefined) {
    if (typeof b.label !== 'string' || b.label.length > 200) return { ok: false, message: '"label" must be a string of at most 200 characters.' };
    out.label = b.label;
  }
  if (b.models !== undefined) {
    if (b.models === '*') out.models = '*';
    else if (Array.isArray(b.models) && b.models.length <= 1000 && b.models.every(function (m) { return typeof m === 'string' && m.length > 0 && m.length <= 256; })) out.models = b.models;
    else return { ok: false, message: '"models" must be "*" or a list of model names.' };
  }
  if (b.rpm !== undefined) {
    if (!isInt(b.rpm, 0, 1000000)) return { ok: false, message: '"rpm" must be an integer from 0 (unlimited) to 1000000.' };
    out.rpm = b.rpm;
  }
  if (b.burst !== undefined) {
    if (!isInt(b.burst, 0, 100000)) return { ok: false, message: '"burst" must be an integer from 0 (no per-second cap) to 100000.' };
    out.burst = b.burst;
  }
  if (b.tier !== undefined) {
    if (TIER_ORDER.indexOf(b.tier as Tier) < 0) return { ok: false, message: '"tier" must be one of ' + TIER_ORDER.join(', ') + '.' };
    out.tier = b.tier;
  }
  if (b.expires_at !== undefined && b.expires_in !== undefined) return { ok: false, message: 'Give "expires_at" or "expires_in", not both.' };
  if (b.expires_at !== undefined) {
    if (b.expires_at !== null && !isInt(b.expires_at, 0, 4102444800)) return { ok: false, message: '"expires_at" must be unix seconds or null.' };
    out.expires_at = b.expires_at === null ? 0 : b.expires_at;
  }
  if (b.expires_in !== undefined) {
    if (!isInt(b.expires_in, 1, 315360000)) return { ok: false, message: '"expires_in" must be a number of seconds from 1 to 315360000.' };
    out.expires_at = nowSec + (b.expires_in as number);
  }
  if (b.disabled !== undefined) {
    if (typeof b.disabled !== 'boolean') return { ok: false, message: '"disabled" must be true or false.' };
    out.disabled = b.disabled;
  }
  return { ok: true, value: out };
}

/** A new record from validated create input. */
export function newRecord(v: { [k: string]: unknown }, id: string, hash: string, nowSec: number, source: 'file' | 'admin'): KeyRecord {
  return {
    id: id, hash: hash,
    label: typeof v.label === 'string' ? v.label : '',
    models: v.models !== undefined ? (v.models as '*' | string[]) : '*',
    rpm: typeof v.rpm === 'number' ? v.rpm : 0,
    burst: typeof v.burst === 'number' ? v.burst : 0,
    tier: v.tier !== undefined ? (v.tier as Tier) : 'normal',
    expires_at: typeof v.expires_at === 'number' ? v.expires_at : 0,
    disabled: v.disabled === true,
    created_at: nowSec,
    source: source,
  };
}

/** Applies validated update input to a record (returns a new object). */
export function applyUpdate(k: KeyRecord, v: { [key: string]: unknown }): KeyRecord {
  const r = JSON.parse(JSON.stringify(k)) as KeyRecord;
  if (v.label !== undefined) r.label = v.label as string;
  if (v.models !== undefined) r.models = v.models as '*' | string[];
  if (v.rpm !== undefined) r.rpm = v.rpm as number;
  if (v.burst !== undefined) r.burst = v.burst as number;
  if (v.tier !== undefined) r.tier = v.tier as Tier;
  if (v.expires_at !== undefined) r.expires_at = v.expires_at as number;
  if (v.disabled !== undefined) r.disabled = v.disabled as boolean;
  return r;
}

/**
 * Reads the records of a keys file (GW_KEYS_FILE, or the gateway's own state file):
 * {"keys":[{"id","hash":"sha256:<hex>", ...record fields}]}. Bad entries are reported, not fatal.
 */
export function parseKeysFile(text: string, source: 'file' | 'admin', nowSec: number): { records: KeyRecord[]; errors: string[] } {
  const records: KeyRecord[] = [];
  const errors: string[] = [];
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    return { records: records, errors: ['not JSON: ' + String(e)] };
  }
  const list = doc !== null && typeof doc === 'object' ? (doc as { keys?: unknown }).keys : undefined;
  if (!Array.isArray(list)) return { records: records, errors: ['expected {"keys": [...]}'] };
  const seenId: { [id: string]: boolean } = Object.create(null);
  const seenHash: { [h: string]: boolean } = Object.create(null);
  for (let i = 0; i < list.length; i++) {
    const e = list[i] as { [k: string]: unknown };
    if (e === null || typeof e !== 'object') {
      errors.push('keys[' + i + ']: not an object');
      continue;
    }
    const hash = typeof e.hash === 'string' ? /^(?:sha256:)?([0-9a-f]{64})$/.exec(e.hash) : null;
    if (!hash) {
      errors.push('keys[' + i + ']: "hash" must be "sha256:<64 hex>" (scripts/gw-key.ts makes one)');
      continue;
    }
    const fields: { [k: string]: unknown } = {};
    for (let f = 0; f < FIELDS.length; f++) if (e[FIELDS[f]] !== undefined && FIELDS[f] !== 'expires_in') fields[FIELDS[f]] = e[FIELDS[f]];
    const v = validateKeyInput(fields, false, nowSec);
    if (!v.ok || typeof v.value.id !== 'string') {
      errors.push('keys[' + i + ']: ' + (v.ok ? '"id" is required' : v.message));
      continue;
    }
    if (seenId[v.value.id as string] || seenHash[hash[1]]) {
      // Two entries for one id or one secret: which one wins would depend on the order of writes.
      errors.push('keys[' + i + ']: ' + (seenId[v.value.id as string] ? 'id "' + v.value.id + '" appears twice' : 'this hash is already used by another entry') + '; skipped');
      continue;
    }
    seenId[v.value.id as string] = true;
    seenHash[hash[1]] = true;
    const rec = newRecord(v.value, v.value.id as string, hash[1], typeof e.created_at === 'number' ? e.created_at : nowSec, source);
    records.push(rec);
  }
  return { records: records, errors: errors };
}

/** A record's models as $gw_key_models carries them (core/access.ts): "*" or a JSON array. */
export function modelsSpec(models: '*' | string[]): string {
  return models === '*' ? '*' : JSON.stringify(models);
}

/**
 * A record as the gw_keys zone stores it (ngx/keyStore.ts): the fields the request path needs,
 * tab-separated, then the record's JSON, so a request splits off seven short strings instead of
 * parsing the record into an object:
 *   <hash> TAB <state> TAB <rpm> TAB <burst> TAB <tier> TAB <models> TAB <source> TAB <JSON>
 * state is "d" for a disabled key, else expires_at ("0": never); models is modelsSpec's. No field
 * holds a tab: the hash is hex, rpm and burst integers, tier and source names, and JSON escapes
 * tabs. A value that starts with "{" was stored before this layout (the zone outlives a reload): it
 * is the JSON alone, and both readers below accept it.
 */
export function encodeRecord(k: KeyRecord): string {
  return k.hash + '\t' + (k.disabled ? 'd' : String(k.expires_at)) + '\t' + k.rpm + '\t' + k.burst + '\t' + k.tier +
    '\t' + modelsSpec(k.models) + '\t' + k.source + '\t' + JSON.stringify(k);
}

export function decodeRecord(v: string): KeyRecord {
  if (v.charAt(0) === '{') return JSON.parse(v) as KeyRecord;
  let at = 0;
  for (let i = 0; i < 7; i++) at = v.indexOf('\t', at) + 1;
  return JSON.parse(v.slice(at)) as KeyRecord;
}

/**
 * The request path's fields of a stored value: [hash, state, rpm, burst, tier, models, source].
 * The caller checks the hash first; oldHotFields reads a value stored before the layout.
 */
export function hotFields(v: string): string[] {
  return v.split('\t', 7);
}

/** hotFields of a value stored before the layout (the JSON alone), or null for one in the layout. */
export function oldHotFields(v: string): string[] | null {
  if (v.charAt(0) !== '{') return null;
  const k = JSON.parse(v) as KeyRecord;
  return [k.hash, k.disabled ? 'd' : String(k.expires_at), String(k.rpm), String(k.burst), k.tier, modelsSpec(k.models), k.source];
}

/**
 * Whether a key whose state field is `state` may be used at nowMs (integer ms): not disabled, and
 * before its expiry (expires_at unix seconds; 0 never). Anything else, garbage included, is no.
 */
export function keyActive(state: string, nowMs: number): boolean {
  // For integer seconds, "expires_at > floor(now / 1000)" is "expires_at * 1000 > now".
  return state === '0' || (state !== 'd' && Number(state) * 1000 > nowMs);
}

/**
 * The record a presented key's hash authenticates as: the id's CURRENT record, and only when that
 * record still names this hash. The h:<hash> → id index may briefly (or, after a crash, lastingly)
 * point at an id whose secret was rotated or revoked; such an entry must never authenticate.
 */
export function currentRecord(hash: string, record: KeyRecord | null): KeyRecord | null {
  return record !== null && record.hash === hash ? record : null;
}

/** What fs.statSync tells about a file or folder (njs and Node both have these fields). */
export interface FileFacts {
  path: string;
  mode: number;
  uid: number;
}

const STICKY = 0o1000;
const GROUP_OTHER_WRITE = 0o022;

function octal(mode: number): string {
  return (mode & 0o7777).toString(8);
}

/**
 * Why a keys file must not be trusted, or null when it may be read. Like ssh with a loose
 * authorized_keys: a file that someone other than its owner can change, or that sits in a folder
 * where someone else can rename another file over it, could hold anyone's keys.
 *   file     the file itself: not writable by group or others.
 *   dirs     its folder first, then each folder above it: none writable by group or others unless
 *            sticky (like /tmp, where nobody may rename another user's entry).
 *   owners   when given (the gateway's own state file), the uids allowed to own the file: the
 *            state folder's owner (the user the workers run as) and root.
 */
export function looseFileProblem(file: FileFacts, dirs: FileFacts[], owners: number[] | null): string | null {
  if ((file.mode & GROUP_OTHER_WRITE) !== 0) {
    return file.path + ' is writable by group or others (mode ' + octal(file.mode) + '); refused: chmod 600 ' + file.path;
  }
  const dirProblem = looseDirsProblem(file.path, dirs, owners !== null);
  if (dirProblem !== null) return dirProblem;
  if (owners !== null && owners.indexOf(file.uid) < 0) {
    return file.path + ' is owned by uid ' + file.uid + ', not by the owner of its folder (uid ' + owners[0] +
      ', the user the nginx workers run as) or root: someone else made it; refused: check who can write ' +
      (dirs.length > 0 ? dirs[0].path : 'its folder') + ', then remove the file or chown it';
  }
  return null;
}

/**
 * Why the folders holding `subject` (nearest first) let someone else replace it, or null. With
 * strictFirst (the gateway's own state folder) the nearest must not be writable by group or
 * others at all; the others, and every folder without strictFirst, may be if sticky (like /tmp).
 */
export function looseDirsProblem(subject: string, dirs: FileFacts[], strictFirst: boolean): string | null {
  for (let i = 0; i < dirs.length; i++) {
    const d = dirs[i];
    const strict = strictFirst && i === 0;
    if ((d.mode & GROUP_OTHER_WRITE) !== 0 && (strict || (d.mode & STICKY) === 0)) {
      return subject + ' is in ' + d.path + ', which group or others can write (mode ' + octal(d.mode) +
        '): they could put their own file in its place; refused: chmod ' + (strict ? '700 ' : 'go-w ') + d.path;
    }
  }
  return null;
}

/** The folders a path lives in, nearest first ("/a/b/f" → ["/a/b", "/a", "/"]). */
export function parentDirs(path: string): string[] {
  const out: string[] = [];
  let p = path.replace(/\/+$/, '');
  for (;;) {
    const cut = p.lastIndexOf('/');
    if (cut < 0) break;
    p = cut === 0 ? '/' : p.slice(0, cut);
    out.push(p);
    if (p === '/') break;
  }
  return out;
}

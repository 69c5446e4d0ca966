/**
 * The key store over the `gw_keys` shared dict (string zone), shared by all workers:
 *   i:<id>      → the KeyRecord (with its hash), stored as core/keys.ts encodeRecord: the fields a
 *                 request needs on one tab-separated line, then the JSON. THE record of a key.
 *                 Every change of a key ends with ONE write of this entry (create: add, update/rotate: replace, revoke:
 *                 delete); that write is the change's linearization point.
 *   h:<hash>    → id: the index authentication looks the presented key up in. Written BEFORE the
 *                 record names the hash, removed AFTER it stops naming it, and only trusted when
 *                 i:<id> names the same hash (core/keys.ts currentRecord), so a stale index entry
 *                 (a crash between the two writes, or a lost lock) can never authenticate.
 *   meta:loaded, meta:stamp:<file|admin>   → load bookkeeping
 * and the `gw_keys_lock` zone (string, timeout=): "lock" → token of the one worker changing the
 * store. Every change (admin call, file sync, cold-start load) runs under it, re-reads what it
 * changes after taking it, and also writes the state file under it, so the file always matches
 * the dict when no change is in flight. The lock expires (the zone's timeout) if its holder dies.
 *
 * Sources: GW_KEYS_FILE (bootstrap keys, hashes only, managed by ops) and the gateway's own state
 * file GW_STATE_DIR/keys-state.json (keys made through the admin API). njs 0.8 has no persistent
 * shared dict (`state=` arrived in 0.9.1), so the admin API writes that file on every change and a
 * fresh nginx loads both files on first use; the dict itself survives `nginx -s reload`.
 */
import cr from 'crypto';
import fs from 'fs';
import { currentRecord, decodeRecord, encodeRecord, FileFacts, KeyRecord, oldHotFields, looseDirsProblem, looseFileProblem, parentDirs, parseKeysFile } from '../core/keys';
import { Logger } from './log';
import { missingZone } from '../core/zones';
import { loadForRequest } from './keyLoad';

function dict(): NgxSharedDict<string> {
  const d = ngx.shared.gw_keys;
  if (!d) throw missingZone('gw_keys');
  return d as NgxSharedDict<string>;
}

function lockDict(): NgxSharedDict<string> {
  const d = ngx.shared.gw_keys_lock;
  if (!d) throw missingZone('gw_keys_lock');
  return d as NgxSharedDict<string>;
}

export function sha256hex(s: string): string {
  return cr.createHash('sha256').update(s).digest('hex') as string;
}

/** base64url of `bytes` random bytes from the WebCrypto CSPRNG. */
export function randomToken(bytes: number): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(bytes)) as Uint8Array).toString('base64url');
}

export function nowSec(): number {
  return Math.floor(Date.now() / 1000);
}

function env(name: string): string {
  const v = process.env[name];
  return typeof v === 'string' ? v : '';
}

export function stateFile(): string {
  const dir = env('GW_STATE_DIR');
  return dir !== '' ? dir.replace(/\/+$/, '') + '/keys-state.json' : '';
}

function fileOf(source: 'file' | 'admin'): string {
  return source === 'file' ? env('GW_KEYS_FILE') : stateFile();
}

// ---------------------------------------------------------------------------------------------
// Reads (any worker, no lock).

function readRecord(id: string): KeyRecord | null {
  const v = dict().get('i:' + id);
  return typeof v === 'string' ? decodeRecord(v) : null;
}

/** The hot path: two dict reads (index, then the record), trusted only if the record names `hash`. */
export function findByHash(hash: string): KeyRecord | null {
  const id = dict().get('h:' + hash);
  return typeof id === 'string' ? currentRecord(hash, readRecord(id)) : null;
}

/**
 * The request path's fields of the key whose secret hashes to `hash`, with its id first:
 * [id, state, rpm, burst, tier, models, source] (core/keys.ts encodeRecord), or null. Two dict
 * reads for a known key, trusted only if the record names `hash` (as findByHash). Only a miss
 * checks that the key files are loaded (a cold start: loads them, then looks again); until the
 * first load ends the dict holds only keys that load wrote, so a hit never needs that check.
 */
export function lookup(hash: string, log: Pick<NginxHTTPRequest, 'warn'>): string[] | null {
  const d = ngx.shared.gw_keys as NgxSharedDict<string> | undefined; // dict(), inline
  if (!d) throw missingZone('gw_keys');
  for (let pass = 0; ; pass++) {
    const id = d.get('h:' + hash);
    const v = typeof id === 'string' ? d.get('i:' + id) : undefined;
    if (typeof v === 'string') {
      let f: string[] | null = v.split('\t', 7); // core/keys.ts hotFields, inline: a request pays for every call
      if (f[0] !== hash) f = oldHotFields(v);
      if (f !== null && f[0] === hash) {
        f[0] = id as string;
        return f;
      }
    }
    if (pass > 0 || d.get('meta:loaded') === '1') return null;
    loadForRequest(log);
  }
}

/** Writes what loading the key files found wrong to the error log, one warning each. */
export function warnProblems(log: Pick<Logger, 'warn'>, problems: string[]): void {
  for (let i = 0; i < problems.length; i++) log.warn('keys: ' + problems[i]);
}

export function findById(id: string): KeyRecord | null {
  return readRecord(id);
}

export function list(): KeyRecord[] {
  const items = dict().items(1000000) as [string, string][];
  const out: KeyRecord[] = [];
  for (let i = 0; i < items.length; i++) {
    if (items[i][0].indexOf('i:') === 0) out.push(decodeRecord(items[i][1]));
  }
  out.sort(function (a, b) { return a.created_at - b.created_at || (a.id < b.id ? -1 : 1); });
  return out;
}

// ---------------------------------------------------------------------------------------------
// The lock.

/** How long an admin call or the sync waits for the lock: past the zone's timeout, so a dead holder's lock has expired. */
export const LOCK_WAIT_MS = 6000;

function tryLock(): string | null {
  const token = randomToken(12);
  return lockDict().add('lock', token) ? token : null;
}

function unlock(token: string): void {
  const d = lockDict();
  // Only our own lock: if ours expired (a holder stalled past the timeout), another worker's is not ours to drop.
  if (d.get('lock') === token) d.delete('lock');
}

/** Runs fn under the lock, or returns {ok:false} when another worker holds it. */
export function tryExclusive<T>(fn: () => T): { ok: true; value: T } | { ok: false } {
  const token = tryLock();
  if (token === null) return { ok: false };
  try {
    return { ok: true, value: fn() };
  } finally {
    unlock(token);
  }
}

/**
 * Runs fn under the lock once it is free (polling, without blocking the worker), or resolves
 * {ok:false} after waitMs. fn is synchronous: nothing else of this worker runs while it holds
 * the lock, so a holder is always another worker (or a dead one whose lock expires).
 */
export function exclusive<T>(waitMs: number, fn: () => T): Promise<{ ok: true; value: T } | { ok: false }> {
  const deadline = Date.now() + waitMs;
  return new Promise(function (resolve, reject) {
    function attempt(): void {
      let res: { ok: true; value: T } | { ok: false };
      try {
        res = tryExclusive(fn);
      } catch (e) {
        reject(e);
        return;
      }
      if (res.ok || Date.now() >= deadline) resolve(res);
      else setTimeout(attempt, 1 + Math.floor(Math.random() * 4));
    }
    attempt();
  });
}

// ---------------------------------------------------------------------------------------------
// Changes: call these only under the lock (they re-read what they change).

/** Adds a new key; false when the id exists (add: two creates of one id cannot both win). */
export function create(rec: KeyRecord): boolean {
  const d = dict();
  const owner = d.get('h:' + rec.hash);
  if (typeof owner === 'string' && owner !== rec.id && findByHash(rec.hash) !== null) return false;
  d.set('h:' + rec.hash, rec.id);
  if (d.add('i:' + rec.id, encodeRecord(rec))) return true;
  if (d.get('h:' + rec.hash) === rec.id && currentRecord(rec.hash, readRecord(rec.id)) === null) d.delete('h:' + rec.hash);
  return false;
}

/**
 * Replaces the record of an existing id (same or new hash); false when the id is gone (replace:
 * an update that lost a race with a revoke cannot bring the key back).
 */
export function update(next: KeyRecord): boolean {
  const d = dict();
  const prev = readRecord(next.id);
  if (prev === null) return false;
  if (prev.hash !== next.hash) {
    const owner = d.get('h:' + next.hash);
    if (typeof owner === 'string' && owner !== next.id && findByHash(next.hash) !== null) return false;
    d.set('h:' + next.hash, next.id);
  }
  if (!d.replace('i:' + next.id, encodeRecord(next))) {
    if (prev.hash !== next.hash && d.get('h:' + next.hash) === next.id) d.delete('h:' + next.hash);
    return false;
  }
  if (prev.hash !== next.hash && d.get('h:' + prev.hash) === next.id) d.delete('h:' + prev.hash);
  return true;
}

/** Revokes an id: the record goes first (from then on no secret of it authenticates), then its index entry. */
export function revoke(id: string): boolean {
  const d = dict();
  const prev = readRecord(id);
  if (prev === null) return false;
  d.delete('i:' + id);
  if (d.get('h:' + prev.hash) === id) d.delete('h:' + prev.hash);
  return true;
}

// ---------------------------------------------------------------------------------------------
// Files.

function facts(path: string): FileFacts {
  const st = fs.statSync(path);
  return { path: path, mode: st.mode, uid: st.uid };
}

/**
 * null when `path` may be trusted, else the reason (core/keys.ts looseFileProblem). The state file
 * must also be owned by its folder's owner (the workers' user, which made it) or root.
 */
function trustProblem(path: string, source: 'file' | 'admin'): string | null {
  const dirs = parentDirs(path).map(facts);
  const owners = source === 'admin' ? [dirs[0].uid, 0] : null;
  return looseFileProblem(facts(path), dirs, owners);
}

function stamp(path: string): string {
  try {
    const st = fs.statSync(path);
    // The inode changes on every write+rename, even one within the same millisecond and size; the
    // ctime on chmod/chown, so a file refused for its mode is read again once that is fixed.
    return String(st.ino) + ':' + String(st.mtimeMs) + ':' + String(st.ctimeMs) + ':' + String(st.size);
  } catch (e) {
    return 'absent';
  }
}

/**
 * Makes the dict hold exactly the file's records for that source, if the file changed since the
 * last sync (or always with force). A missing file means no keys from that source; a file that
 * is broken or that others could have written is not read, and the keys loaded before stay.
 * Call under the lock. Returns the problems found, for the error log.
 */
export function syncSource(source: 'file' | 'admin', force: boolean): string[] {
  const path = fileOf(source);
  if (path === '') return [];
  const d = dict();
  const st = stamp(path);
  if (!force && d.get('meta:stamp:' + source) === st) return [];
  let records: KeyRecord[] = [];
  let errors: string[] = [];
  if (st !== 'absent') {
    const loose = trustProblem(path, source);
    if (loose !== null) {
      // Stamp it anyway: one error line per change of the file, not one every sync interval.
      d.set('meta:stamp:' + source, st);
      return [loose];
    }
    const parsed = parseKeysFile(fs.readFileSync(path, 'utf8'), source, nowSec());
    records = parsed.records;
    errors = parsed.errors.map(function (e) { return path + ': ' + e; });
    if (parsed.records.length === 0 && parsed.errors.length > 0 && /not JSON|expected/.test(parsed.errors[0])) {
      // A half-written or broken file must not revoke every key: keep what we have.
      return errors;
    }
  }
  const seen: { [id: string]: boolean } = Object.create(null);
  for (let i = 0; i < records.length; i++) {
    const rec = records[i];
    const existing = readRecord(rec.id);
    if (existing !== null && existing.source !== source) {
      errors.push(path + ': id "' + rec.id + '" is already used by a key from ' + (existing.source === 'file' ? 'GW_KEYS_FILE' : 'the admin API') + '; skipped');
      continue;
    }
    seen[rec.id] = true;
    // Unchanged and already in this layout (a record stored before it is rewritten once).
    if (existing !== null && d.get('i:' + rec.id) === encodeRecord(rec)) continue;
    if (!(existing === null ? create(rec) : update(rec))) {
      seen[rec.id] = existing !== null;
      errors.push(path + ': id "' + rec.id + '": its hash is already used by another key; skipped');
    }
  }
  const all = list();
  for (let i = 0; i < all.length; i++) {
    if (all[i].source === source && !seen[all[i].id]) revoke(all[i].id);
  }
  d.set('meta:stamp:' + source, st);
  return errors;
}

/** Loads both files into the dict once per dict lifetime. Call under the lock. */
export function loadIfNeeded(): string[] {
  const d = dict();
  if (d.get('meta:loaded') === '1') return [];
  const errors = syncSource('file', true).concat(syncSource('admin', true));
  d.set('meta:loaded', '1');
  return errors;
}

/** How long a request of a cold-started worker waits while another worker loads the key files. */
const LOAD_WAIT_MS = 2000;

/**
 * For the request path (synchronous): returns at once once the store is loaded (one dict read);
 * on a cold start, loads it, or waits (bounded) while another worker does. Past the wait it
 * answers from what is loaded, which refuses the keys not loaded yet (fail closed).
 */
export function ensureLoaded(): string[] {
  const d = dict();
  if (d.get('meta:loaded') === '1') return [];
  const deadline = Date.now() + LOAD_WAIT_MS;
  for (;;) {
    const res = tryExclusive(loadIfNeeded);
    if (res.ok) return res.value;
    if (d.get('meta:loaded') === '1') return [];
    if (Date.now() >= deadline) return ['another worker is still loading the key files; keys not loaded yet are refused'];
  }
}

/**
 * Writes the admin-made keys to GW_STATE_DIR/keys-state.json (0600, write + rename, so a reader
 * never sees half a file). Call under the lock, right after the change, so the file matches the
 * dict. Returns false when no state dir is configured (changes last until restart); throws (with
 * the fix in the message) when the folder cannot be written or could be written by others.
 */
export function persist(): boolean {
  const path = stateFile();
  if (path === '') return false;
  const dirs = parentDirs(path).map(facts);
  const loose = looseDirsProblem(path, dirs, true);
  if (loose !== null) throw new Error('not writing the key state file: ' + loose);
  const all = list();
  const keys: KeyRecord[] = [];
  for (let i = 0; i < all.length; i++) if (all[i].source === 'admin') keys.push(all[i]);
  const body = JSON.stringify({ keys: keys.map(function (k) {
    return { id: k.id, hash: 'sha256:' + k.hash, label: k.label, models: k.models, rpm: k.rpm, burst: k.burst, tier: k.tier,
      expires_at: k.expires_at, disabled: k.disabled, created_at: k.created_at };
  }) }, null, 1);
  const tmp = path + '.tmp.' + process.pid;
  try {
    fs.unlinkSync(tmp); // a leftover of a dead worker with this pid keeps its mode; start from none
  } catch (e) {
    // none: the usual case
  }
  fs.writeFileSync(tmp, body, { mode: 0o600 });
  fs.renameSync(tmp, path);
  dict().set('meta:stamp:admin', stamp(path));
  return true;
}

/**
 * The key store over the `gw_keys` shared dict (string zone), shared by all workers:
 *   h:<sha256 hex> → KeyRecord JSON        i:<id> → sha256 hex
 *   meta:loaded, meta:stamp:<file|admin>   → load bookkeeping
 * Sources: GW_KEYS_FILE (bootstrap keys, hashes only, managed by ops) and the gateway's own state
 * file GW_STATE_DIR/keys-state.json (keys made through the admin API). njs 0.8 has no persistent
 * shared dict (`state=` arrived in 0.9.1), so the admin API writes that file on every change and a
 * fresh nginx loads both files on first use; the dict itself survives `nginx -s reload`.
 */
import cr from 'crypto';
import fs from 'fs';
import { KeyRecord, parseKeysFile } from '../core/keys';

function dict(): NgxSharedDict<string> {
  const d = ngx.shared.gw_keys;
  if (!d) throw new Error('js_shared_dict_zone gw_keys is missing: include nginx/gateway-http.conf');
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

export function findByHash(hash: string): KeyRecord | null {
  const v = dict().get('h:' + hash);
  return typeof v === 'string' ? (JSON.parse(v) as KeyRecord) : null;
}

export function findById(id: string): KeyRecord | null {
  const h = dict().get('i:' + id);
  return typeof h === 'string' ? findByHash(h) : null;
}

export function put(rec: KeyRecord): void {
  const d = dict();
  const old = d.get('i:' + rec.id);
  if (typeof old === 'string' && old !== rec.hash) d.delete('h:' + old);
  d.set('h:' + rec.hash, JSON.stringify(rec));
  d.set('i:' + rec.id, rec.hash);
}

export function remove(rec: KeyRecord): void {
  const d = dict();
  d.delete('h:' + rec.hash);
  d.delete('i:' + rec.id);
}

export function list(): KeyRecord[] {
  const d = dict();
  const keys = d.keys(1000000);
  const out: KeyRecord[] = [];
  for (let i = 0; i < keys.length; i++) {
    if (keys[i].indexOf('i:') !== 0) continue;
    const rec = findById(keys[i].slice(2));
    if (rec !== null) out.push(rec);
  }
  out.sort(function (a, b) { return a.created_at - b.created_at || (a.id < b.id ? -1 : 1); });
  return out;
}

function stamp(path: string): string {
  try {
    const st = fs.statSync(path);
    return String(st.mtimeMs) + ':' + String(st.size);
  } catch (e) {
    return 'absent';
  }
}

/**
 * Makes the dict hold exactly the file's records for that source, if the file changed since the
 * last sync (or always with force). A missing file means no keys from that source. Returns the
 * problems found, for the error log.
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
    const existing = findById(records[i].id);
    if (existing !== null && existing.source !== source) {
      errors.push(path + ': id "' + records[i].id + '" is already used by a ' + existing.source + ' key; skipped');
      continue;
    }
    seen[records[i].id] = true;
    put(records[i]);
  }
  const all = list();
  for (let i = 0; i < all.length; i++) {
    if (all[i].source === source && !seen[all[i].id]) remove(all[i]);
  }
  d.set('meta:stamp:' + source, st);
  return errors;
}

/** Loads both files into the dict once per dict lifetime (first request after a cold start). */
export function ensureLoaded(): string[] {
  const d = dict();
  if (d.get('meta:loaded') === '1') return [];
  const errors = syncSource('file', true).concat(syncSource('admin', true));
  d.set('meta:loaded', '1');
  return errors;
}

/**
 * Writes the admin-made keys to GW_STATE_DIR/keys-state.json (write + rename, so a reader never
 * sees half a file). Returns false when no state dir is configured (changes last until restart).
 */
export function persist(): boolean {
  const path = stateFile();
  if (path === '') return false;
  const all = list();
  const keys: KeyRecord[] = [];
  for (let i = 0; i < all.length; i++) if (all[i].source === 'admin') keys.push(all[i]);
  const body = JSON.stringify({ keys: keys.map(function (k) {
    return { id: k.id, hash: 'sha256:' + k.hash, label: k.label, models: k.models, rpm: k.rpm, burst: k.burst, tier: k.tier,
      expires_at: k.expires_at, disabled: k.disabled, created_at: k.created_at };
  }) }, null, 1);
  const tmp = path + '.tmp.' + process.pid;
  fs.writeFileSync(tmp, body);
  fs.renameSync(tmp, path);
  dict().set('meta:stamp:admin', stamp(path));
  return true;
}

/**
 * Signature checks for JWT bearer tokens and the JWKS store, over the `gw_jwks` shared dict (string
 * zone, nginx/jwt-http.conf), shared by all workers:
 *   jwks       JSON list of the verifiable keys (core/jwks.ts cleanJwks) of the last good fetch
 *   jwks:at    ms of the last good fetch       jwks:try   ms of the last attempt
 *   jwks:miss  "1" when a request named a kid the set lacks (the next tick refetches)
 *   jwks:src   stamp of GW_JWKS_FILE when the set came from it
 * Only gw.jwt.jwksRefresh (js_periodic, one worker) replaces the set; requests only raise jwks:miss,
 * and load GW_JWKS_FILE themselves while the dict is still empty.
 *
 * WebCrypto returns Promises, yet a rewrite-phase js_set cannot wait. njs computes every WebCrypto
 * result synchronously and settles its Promise through the job queue, which nginx drains before the
 * js_set call returns, on the njs engine and on QuickJS alike (ngx_js.c: engine call → execute
 * pending jobs; docs/jwt.md). So the verdict of the chain below exists when nginx reads $gw_auth.
 * If a future njs ever made these truly asynchronous, nginx would refuse the variable ("async
 * operation inside variable handler") and the request fails closed.
 */
import cr from 'crypto';
import fs from 'fs';
import { cleanJwks, Jwk } from '../core/jwks';
import { AlgSpec, timingSafeEqual } from '../core/jwt';
import { missingZone } from '../core/zones';

function dict(): NgxSharedDict<string> {
  const d = ngx.shared.gw_jwks;
  if (!d) throw missingZone('gw_jwks');
  return d as NgxSharedDict<string>;
}

function env(name: string): string {
  const v = process.env[name];
  return typeof v === 'string' ? v : '';
}

export function jwksUrl(): string {
  return env('GW_JWKS_URL');
}

export function jwksFile(): string {
  return env('GW_JWKS_FILE');
}

/** True when any token source is configured; otherwise JWT-shaped credentials stay API keys. */
export function jwtEnabled(): boolean {
  return env('GW_JWT_SECRET') !== '' || env('GW_JWT_SECRET_FILE') !== '' || jwksUrl() !== '' || jwksFile() !== '';
}

/**
 * The HS* secret: GW_JWT_SECRET, or the first line of GW_JWT_SECRET_FILE (read per use, so a
 * rotated file takes effect without a reload). "" when none; shorter than 32 bytes is refused.
 */
export function hsSecret(): { secret: string; problem: string } {
  let s = env('GW_JWT_SECRET');
  const file = env('GW_JWT_SECRET_FILE');
  if (s === '' && file !== '') {
    try {
      s = (fs.readFileSync(file, 'utf8') as string).replace(/[\r\n]+$/, '');
    } catch (e) {
      return { secret: '', problem: 'GW_JWT_SECRET_FILE cannot be read: ' + String(e) };
    }
  }
  if (s === '') return { secret: '', problem: 'an HS token arrived but neither GW_JWT_SECRET nor GW_JWT_SECRET_FILE is set' };
  if (Buffer.byteLength(s) < 32) return { secret: '', problem: 'the JWT secret is shorter than 32 bytes; use e.g. `openssl rand -base64 48`' };
  return { secret: s, problem: '' };
}

function fileStamp(path: string): string {
  try {
    const st = fs.statSync(path);
    return String(st.mtimeMs) + ':' + String(st.size);
  } catch (e) {
    return 'absent';
  }
}

/** Parses and stores a JWKS document; keeps the last good set unless this one has keys. */
export function storeJwks(text: string, stamp: string): { stored: number; problems: string[] } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    return { stored: 0, problems: ['not JSON'] };
  }
  const c = cleanJwks(doc);
  if (c.keys.length === 0) return { stored: 0, problems: c.dropped.concat(['no usable key; the previous set is kept']) };
  const d = dict();
  d.set('jwks', JSON.stringify(c.keys));
  d.set('jwks:at', String(Date.now()));
  d.set('jwks:src', stamp);
  return { stored: c.keys.length, problems: c.dropped };
}

/** Loads GW_JWKS_FILE when it changed (or the dict has no set yet). */
export function syncJwksFile(): string[] {
  const path = jwksFile();
  if (path === '') return [];
  const st = fileStamp(path);
  const d = dict();
  if (d.get('jwks:src') === st && d.get('jwks') !== undefined) return [];
  if (st === 'absent') return [path + ': missing; the previous set is kept'];
  const r = storeJwks(fs.readFileSync(path, 'utf8') as string, st);
  return r.problems.map(function (p) { return path + ': ' + p; });
}

/** The current key set (loading GW_JWKS_FILE on first use), [] when there is none yet. */
export function currentKeys(): { keys: Jwk[]; problems: string[] } {
  const d = dict();
  let v = d.get('jwks');
  let problems: string[] = [];
  if (v === undefined && jwksFile() !== '') {
    problems = syncJwksFile();
    v = d.get('jwks');
  }
  return { keys: typeof v === 'string' ? (JSON.parse(v) as Jwk[]) : [], problems: problems };
}

function verifiedDict(): NgxSharedDict<number> {
  const d = ngx.shared.gw_jwt_verified;
  if (!d) throw missingZone('gw_jwt_verified');
  return d as NgxSharedDict<number>;
}

/**
 * Tokens whose signature verified recently, by sha256 of the whole token (header, claims and
 * signature), so a client reusing its token skips the key import and the signature math; the
 * claims are still checked on every request. Entries expire with the zone's timeout, which bounds
 * how long a withdrawn key or a rotated secret keeps working for an already-seen token.
 */
export function tokenDigest(token: string): string {
  return cr.createHash('sha256').update(token).digest('base64url') as string;
}

export function recentlyVerified(digest: string): boolean {
  return verifiedDict().get(digest) === 1;
}

export function rememberVerified(digest: string): void {
  verifiedDict().set(digest, 1);
}

/** A request saw a kid the set lacks: gw.jwt.jwksRefresh refetches at most once per jwks_retry. */
export function noteUnknownKid(): void {
  dict().set('jwks:miss', '1');
}

export interface RefreshState {
  lastGoodMs: number;
  lastTryMs: number;
  miss: boolean;
  hasKeys: boolean;
}

export function refreshState(): RefreshState {
  const d = dict();
  return {
    lastGoodMs: Number(d.get('jwks:at') || 0),
    lastTryMs: Number(d.get('jwks:try') || 0),
    miss: d.get('jwks:miss') === '1',
    hasKeys: d.get('jwks') !== undefined,
  };
}

export function markTry(nowMs: number): void {
  const d = dict();
  d.set('jwks:try', String(nowMs));
  d.delete('jwks:miss');
}

/** HS*: HMAC of the signing input with the secret, compared in constant time (WebCrypto's own verify uses memcmp). */
export function verifyHmac(s: AlgSpec, secret: string, signingInput: string, sig: Buffer): Promise<boolean> {
  const enc = Buffer.from(secret);
  return crypto.subtle.importKey('raw', enc, { name: 'HMAC', hash: s.hash }, false, ['sign'])
    .then(function (key) { return crypto.subtle.sign('HMAC', key, Buffer.from(signingInput)); })
    .then(function (mac) { return timingSafeEqual(Buffer.from(mac as ArrayBuffer), sig); });
}

function importParams(s: AlgSpec): RsaHashedImportParams | EcKeyImportParams {
  return s.kind === 'EC' ? { name: 'ECDSA', namedCurve: s.crv as EcKeyImportParams['namedCurve'] } : { name: s.name as RsaHashedImportParams['name'], hash: s.hash };
}

function verifyParams(s: AlgSpec): RsaPssParams | EcdsaParams | { name: string } {
  if (s.name === 'RSA-PSS') return { name: 'RSA-PSS', saltLength: s.len };
  if (s.name === 'ECDSA') return { name: 'ECDSA', hash: s.hash };
  return { name: s.name };
}

function publicJwk(k: Jwk): { [f: string]: unknown } {
  return k.kty === 'EC' ? { kty: 'EC', crv: k.crv, x: k.x, y: k.y } : { kty: 'RSA', n: k.n, e: k.e };
}

/** RS/PS/ES: true when one of the candidate keys verifies (tried in order). */
export function verifyAsymmetric(s: AlgSpec, keys: Jwk[], signingInput: string, sig: Buffer): Promise<boolean> {
  // JOSE ECDSA signatures are r||s of a fixed length; anything else is not a signature of this curve.
  if (s.kind === 'EC' && sig.length !== s.len) return Promise.resolve(false);
  const data = Buffer.from(signingInput);
  function attempt(i: number): Promise<boolean> {
    if (i >= keys.length) return Promise.resolve(false);
    return crypto.subtle.importKey('jwk', publicJwk(keys[i]) as never, importParams(s) as RsaHashedImportParams, false, ['verify'])
      .then(function (key) { return crypto.subtle.verify(verifyParams(s) as RsaPssParams, key, sig, data); })
      .then(function (ok) { return ok ? true : attempt(i + 1); }, function () { return attempt(i + 1); });
  }
  return attempt(0);
}

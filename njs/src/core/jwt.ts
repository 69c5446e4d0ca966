/**
 * JWT bearer tokens (RFC 7519) as an alternative to API keys: recognising a token, decoding it,
 * the alg ↔ key-type allow-list, the time/issuer/audience checks, and mapping claims onto the
 * same per-client policy an API key carries (core/keys.ts). Pure: the signature check itself is
 * in ngx/jwks.ts. Every check returns a reason for the error log; the client always gets the one
 * invalid_api_key message, and no reason ever contains the token or its signature.
 */
import { Tier, TIER_ORDER } from './queue';

export type KeyKind = 'secret' | 'RSA' | 'EC';

export interface AlgSpec {
  kind: KeyKind;
  /** WebCrypto hash (and HMAC digest name for createHmac). */
  hash: 'SHA-256' | 'SHA-384' | 'SHA-512';
  /** WebCrypto algorithm name for the key import; "" for HMAC (crypto.createHmac). */
  name: '' | 'RSASSA-PKCS1-v1_5' | 'RSA-PSS' | 'ECDSA';
  /** EC only: the curve the JWK must name. */
  crv: string;
  /** PS only: salt length = hash length (RFC 7518 §3.5); EC: signature length r||s. */
  len: number;
}

function spec(kind: KeyKind, hash: AlgSpec['hash'], name: AlgSpec['name'], crv: string, len: number): AlgSpec {
  return { kind: kind, hash: hash, name: name, crv: crv, len: len };
}

/**
 * The only algorithms a token may name, each tied to one key type: an HS token is only ever checked
 * with the configured secret, an RS/PS/ES token only with a JWKS key of its own type. So "none",
 * and an HS token "signed" with a public key, have nothing to verify against.
 */
export const ALGS: { [alg: string]: AlgSpec } = {
  HS256: spec('secret', 'SHA-256', '', '', 32),
  HS384: spec('secret', 'SHA-384', '', '', 48),
  HS512: spec('secret', 'SHA-512', '', '', 64),
  RS256: spec('RSA', 'SHA-256', 'RSASSA-PKCS1-v1_5', '', 0),
  RS384: spec('RSA', 'SHA-384', 'RSASSA-PKCS1-v1_5', '', 0),
  RS512: spec('RSA', 'SHA-512', 'RSASSA-PKCS1-v1_5', '', 0),
  PS256: spec('RSA', 'SHA-256', 'RSA-PSS', '', 32),
  PS384: spec('RSA', 'SHA-384', 'RSA-PSS', '', 48),
  PS512: spec('RSA', 'SHA-512', 'RSA-PSS', '', 64),
  ES256: spec('EC', 'SHA-256', 'ECDSA', 'P-256', 64),
  ES384: spec('EC', 'SHA-384', 'ECDSA', 'P-384', 96),
  ES512: spec('EC', 'SHA-512', 'ECDSA', 'P-521', 132),
};

export function algSpec(alg: unknown): AlgSpec | null {
  return typeof alg === 'string' && Object.prototype.hasOwnProperty.call(ALGS, alg) ? ALGS[alg] : null;
}

/**
 * Settings from gateway.json "jwt" (scripts/jwt-config.mjs validates them and fills in defaults).
 * At run time this object is part of the preloaded routing table, whose arrays and objects have no
 * prototype: code here indexes them and never calls their methods.
 */
export interface JwtPolicy {
  group: string;
  models?: '*' | string[];
  tier?: Tier;
  rpm?: number;
  burst?: number;
}

export interface JwtConfig {
  issuer: string;
  audience: string;
  leeway_sec: number;
  require_exp: boolean;
  max_token_bytes: number;
  max_header_bytes: number;
  /** JWKS URL: seconds between regular refetches, and the least time between two attempts (unknown kid, failures). */
  jwks_refresh_sec: number;
  jwks_retry_sec: number;
  /** Allowed algs; empty = every alg in ALGS. */
  algorithms: string[];
  claims: { key_id: string; models: string; tier: string; rpm: string; burst: string; groups: string };
  policies: JwtPolicy[];
}

export const JWT_DEFAULTS: JwtConfig = {
  issuer: '', audience: '', leeway_sec: 30, require_exp: true, max_token_bytes: 8192, max_header_bytes: 1024,
  jwks_refresh_sec: 300, jwks_retry_sec: 30,
  algorithms: [],
  claims: { key_id: 'sub', models: 'models', tier: 'tier', rpm: 'rpm', burst: 'burst', groups: 'groups' },
  policies: [],
};

const B64URL = /^[A-Za-z0-9_-]*$/;

/** Strict base64url (no padding, no other characters) to bytes; null when malformed. */
export function b64urlDecode(s: string): Buffer | null {
  if (!B64URL.test(s) || s.length % 4 === 1) return null;
  return Buffer.from(s, 'base64url');
}

/**
 * The bearer credential of an Authorization header when it has a JWT's shape (three base64url
 * segments, the first starting like a JSON object), else null: everything else stays an API key.
 * Length is not judged here, so an oversize token is refused as a token (parseJwt), with its reason.
 */
export function jwtCandidate(authorization: string | undefined): string | null {
  if (authorization === undefined || authorization.length > 65536) return null;
  const m = /^Bearer[ \t]+(eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)[ \t]*$/i.exec(authorization);
  return m ? m[1] : null;
}

/**
 * A client-chosen string (alg, kid) for a log reason: cut to `max` characters and JSON-quoted, so
 * a CR, LF or other control character cannot end the log line and forge the next one.
 */
export function logQuoted(v: string, max: number): string {
  return JSON.stringify(v.slice(0, max));
}

export interface ParsedJwt {
  alg: string;
  kid: string;
  header: { [k: string]: unknown };
  claims: { [k: string]: unknown };
  /** The bytes the signature covers: "<header>.<payload>" as sent. */
  signingInput: string;
  /** The signature as sent (checked to be base64url); decoded only when it has to be verified. */
  signature: string;
}

export type Parsed = { ok: true; jwt: ParsedJwt } | { ok: false; reason: string };

function fail(reason: string): { ok: false; reason: string } {
  return { ok: false, reason: reason };
}

function jsonObject(b: Buffer | null): { [k: string]: unknown } | null {
  if (b === null) return null;
  let v: unknown;
  try {
    v = JSON.parse(b.toString('utf8'));
  } catch (e) {
    return null;
  }
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as { [k: string]: unknown }) : null;
}

/** Decodes and sanity-checks a token's structure and header; the signature is not checked here. */
export function parseJwt(token: string, cfg: JwtConfig): Parsed {
  if (token.length > cfg.max_token_bytes) return fail('token longer than max_token_bytes (' + cfg.max_token_bytes + ')');
  const parts = token.split('.');
  if (parts.length !== 3) return fail('not three segments');
  if (parts[0].length > Math.ceil(cfg.max_header_bytes * 4 / 3)) return fail('header longer than max_header_bytes (' + cfg.max_header_bytes + ')');
  const header = jsonObject(b64urlDecode(parts[0]));
  if (header === null) return fail('header is not base64url JSON');
  const alg = header.alg;
  if (typeof alg !== 'string') return fail('header has no alg');
  if (algSpec(alg) === null) return fail('alg ' + logQuoted(alg, 16) + ' is not allowed');
  if (cfg.algorithms.length > 0 && !listed(cfg.algorithms, alg)) return fail('alg ' + alg + ' is not in jwt.algorithms');
  if (header.crit !== undefined) return fail('header has crit extensions this gateway does not implement');
  const typ = header.typ;
  if (typ !== undefined && (typeof typ !== 'string' || !/^(application\/)?(at\+)?jwt$/i.test(typ))) return fail('typ is not JWT');
  const kid = header.kid;
  if (kid !== undefined && (typeof kid !== 'string' || kid.length > 256)) return fail('kid is not a short string');
  const claims = jsonObject(b64urlDecode(parts[1]));
  if (claims === null) return fail('payload is not base64url JSON');
  const sig = parts[2];
  if (sig.length < 2 || sig.length % 4 === 1 || !B64URL.test(sig)) return fail('signature is missing or not base64url');
  return { ok: true, jwt: {
    alg: alg, kid: typeof kid === 'string' ? kid : '', header: header, claims: claims,
    signingInput: parts[0] + '.' + parts[1], signature: sig,
  } };
}

/** Membership by index: the config may be the preloaded table, whose arrays have no methods. */
function listed(list: ArrayLike<unknown>, v: unknown): boolean {
  for (let i = 0; i < list.length; i++) if (list[i] === v) return true;
  return false;
}

function copyList(list: ArrayLike<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < list.length; i++) out.push(list[i]);
  return out;
}

function numericDate(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** exp / nbf / iat against `nowSec`, each with the leeway; iss and aud when configured. */
export function checkClaims(c: { [k: string]: unknown }, cfg: JwtConfig, nowSec: number): string {
  const lw = cfg.leeway_sec;
  if (c.exp !== undefined) {
    const exp = numericDate(c.exp);
    if (exp === null) return 'exp is not a number';
    if (nowSec - lw >= exp) return 'expired';
  } else if (cfg.require_exp) {
    return 'no exp claim';
  }
  if (c.nbf !== undefined) {
    const nbf = numericDate(c.nbf);
    if (nbf === null) return 'nbf is not a number';
    if (nowSec + lw < nbf) return 'not valid yet (nbf)';
  }
  if (c.iat !== undefined) {
    const iat = numericDate(c.iat);
    if (iat === null) return 'iat is not a number';
    if (nowSec + lw < iat) return 'issued in the future (iat)';
  }
  if (cfg.issuer !== '' && c.iss !== cfg.issuer) return 'iss does not match jwt.issuer';
  if (cfg.audience !== '') {
    const aud = c.aud;
    let found = aud === cfg.audience;
    if (Array.isArray(aud)) for (let i = 0; i < aud.length; i++) if (aud[i] === cfg.audience) found = true;
    if (!found) return 'aud does not contain jwt.audience';
  }
  return '';
}

/** A claim by name; a dotted name walks into objects (Keycloak: "realm_access.roles"). */
export function claimAt(c: { [k: string]: unknown }, name: string): unknown {
  if (Object.prototype.hasOwnProperty.call(c, name)) return c[name];
  const path = name.split('.');
  let v: unknown = c;
  for (let i = 0; i < path.length; i++) {
    if (v === null || typeof v !== 'object' || Array.isArray(v) || !Object.prototype.hasOwnProperty.call(v, path[i])) return undefined;
    v = (v as { [k: string]: unknown })[path[i]];
  }
  return v;
}

export interface ClientPolicy {
  id: string;
  models: '*' | string[];
  tier: Tier;
  rpm: number;
  burst: number;
}

export type PolicyResult = { ok: true; policy: ClientPolicy } | { ok: false; reason: string };

function modelsValue(v: unknown): '*' | string[] | null {
  if (v === '*') return '*';
  if (!Array.isArray(v) || v.length > 1000) return null;
  const out: string[] = [];
  for (let i = 0; i < v.length; i++) {
    if (typeof v[i] !== 'string' || v[i].length === 0 || v[i].length > 256) return null;
    out.push(v[i]);
  }
  return out;
}

function intValue(v: unknown, max: number): number | null {
  return typeof v === 'number' && v % 1 === 0 && v >= 0 && v <= max ? v : null;
}

/**
 * The per-client policy a verified token grants: the first jwt.policies entry whose group the
 * token's groups claim lists gives the base, and the token's own models/tier/rpm/burst claims
 * override it. A token that names neither gets no model ([]), tier normal and no rate limit: an
 * access is granted only by an explicit claim or policy. A malformed claim refuses the token.
 */
export function policyFromClaims(c: { [k: string]: unknown }, cfg: JwtConfig): PolicyResult {
  const names = cfg.claims;
  const id = claimAt(c, names.key_id);
  if (typeof id !== 'string' || id.length === 0 || id.length > 128 || /[^\x21-\x7e]/.test(id)) {
    return { ok: false, reason: 'claim "' + names.key_id + '" (key id) is missing or not 1-128 printable characters' };
  }
  // "jwt:" keeps token identities apart from API-key ids (which cannot hold a colon): a token whose
  // sub equals a key's id must not share its rate-limit bucket, usage rows or metrics series.
  const p: ClientPolicy = { id: 'jwt:' + id, models: [], tier: 'normal', rpm: 0, burst: 0 };
  let groups = claimAt(c, names.groups);
  if (typeof groups === 'string') groups = [groups];
  if (Array.isArray(groups)) {
    for (let i = 0; i < cfg.policies.length; i++) {
      const pol = cfg.policies[i];
      if (groups.indexOf(pol.group) < 0) continue;
      if (pol.models !== undefined) p.models = pol.models === '*' ? '*' : copyList(pol.models);
      if (pol.tier !== undefined) p.tier = pol.tier;
      if (pol.rpm !== undefined) p.rpm = pol.rpm;
      if (pol.burst !== undefined) p.burst = pol.burst;
      break;
    }
  }
  const models = claimAt(c, names.models);
  if (models !== undefined) {
    const m = modelsValue(models);
    if (m === null) return { ok: false, reason: 'claim "' + names.models + '" must be "*" or a list of model names' };
    p.models = m;
  }
  const tier = claimAt(c, names.tier);
  if (tier !== undefined) {
    if (TIER_ORDER.indexOf(tier as Tier) < 0) return { ok: false, reason: 'claim "' + names.tier + '" must be one of ' + TIER_ORDER.join(', ') };
    p.tier = tier as Tier;
  }
  const rpm = claimAt(c, names.rpm);
  if (rpm !== undefined) {
    const n = intValue(rpm, 1000000);
    if (n === null) return { ok: false, reason: 'claim "' + names.rpm + '" must be an integer from 0 to 1000000' };
    p.rpm = n;
  }
  const burst = claimAt(c, names.burst);
  if (burst !== undefined) {
    const n = intValue(burst, 100000);
    if (n === null) return { ok: false, reason: 'claim "' + names.burst + '" must be an integer from 0 to 100000' };
    p.burst = n;
  }
  return { ok: true, policy: p };
}

/** Equal-length comparison whose time does not depend on where the inputs differ. */
export function timingSafeEqual(a: Buffer, b: Buffer): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

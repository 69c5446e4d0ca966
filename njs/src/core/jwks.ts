/**
 * The identity provider's key set (JWKS, RFC 7517): which published keys the gateway keeps, which
 * of them a token may be checked with (the alg ↔ key-type allow-list of core/jwt.ts ALGS), and
 * when gw.jwt.jwksRefresh fetches. Pure; the store and the fetch are in ngx/jwks.ts.
 */
import { algSpec, JwtConfig } from './jwt';

const B64URL = /^[A-Za-z0-9_-]*$/;

export interface Jwk {
  kty: string;
  kid?: string;
  alg?: string;
  use?: string;
  key_ops?: string[];
  crv?: string;
  n?: string;
  e?: string;
  x?: string;
  y?: string;
}

/**
 * Keeps the JWKS entries this gateway can verify with (RSA and EC public keys for signing; no
 * "oct" secrets, no private parts). Returns the cleaned list and what was dropped, for the log.
 */
export function cleanJwks(doc: unknown): { keys: Jwk[]; dropped: string[] } {
  const keys: Jwk[] = [];
  const dropped: string[] = [];
  const list = doc !== null && typeof doc === 'object' ? (doc as { keys?: unknown }).keys : undefined;
  if (!Array.isArray(list)) return { keys: keys, dropped: ['not a JWKS: expected {"keys": [...]}'] };
  for (let i = 0; i < list.length && keys.length < 64; i++) {
    const k = list[i] as { [f: string]: unknown };
    const at = 'keys[' + i + ']';
    if (k === null || typeof k !== 'object') { dropped.push(at + ': not an object'); continue; }
    if (k.use !== undefined && k.use !== 'sig') { dropped.push(at + ': use is not "sig"'); continue; }
    if (k.key_ops !== undefined && !(Array.isArray(k.key_ops) && k.key_ops.indexOf('verify') >= 0)) { dropped.push(at + ': key_ops lacks "verify"'); continue; }
    const out: Jwk = { kty: String(k.kty) };
    if (typeof k.kid === 'string') out.kid = k.kid;
    if (typeof k.alg === 'string') out.alg = k.alg;
    if (k.kty === 'RSA' && typeof k.n === 'string' && typeof k.e === 'string' && B64URL.test(k.n) && B64URL.test(k.e)) {
      out.n = k.n;
      out.e = k.e;
    } else if (k.kty === 'EC' && typeof k.crv === 'string' && typeof k.x === 'string' && typeof k.y === 'string' && B64URL.test(k.x) && B64URL.test(k.y)) {
      out.crv = k.crv;
      out.x = k.x;
      out.y = k.y;
    } else {
      dropped.push(at + ': not an RSA or EC public key (kty ' + String(k.kty).slice(0, 8) + ')');
      continue;
    }
    keys.push(out);
  }
  return { keys: keys, dropped: dropped };
}

/**
 * The JWKS keys a token may be checked with: same key type as its alg (and curve for EC), the
 * JWK's own alg when it names one, and its kid when the token names one. At most 4 candidates so
 * a kid-less token cannot make the gateway try a long list.
 */
export function candidateKeys(keys: Jwk[], alg: string, kid: string): Jwk[] {
  const s = algSpec(alg);
  const out: Jwk[] = [];
  if (s === null || s.kind === 'secret') return out;
  for (let i = 0; i < keys.length && out.length < 4; i++) {
    const k = keys[i];
    if (k.kty !== s.kind) continue;
    if (k.alg !== undefined && k.alg !== alg) continue;
    if (s.kind === 'EC' && k.crv !== s.crv) continue;
    if (kid !== '' && k.kid !== kid) continue;
    out.push(k);
  }
  return out;
}

/**
 * Whether gw.jwt.jwksRefresh fetches now, and why: the regular refresh every jwks_refresh; sooner when
 * there is no set yet or a request named an unknown kid, but never twice within jwks_retry (an
 * attacker sending random kids cannot make the gateway hammer the identity provider).
 */
export function jwksDue(st: { lastGoodMs: number; lastTryMs: number; miss: boolean; hasKeys: boolean },
  cfg: Pick<JwtConfig, 'jwks_refresh_sec' | 'jwks_retry_sec'>, nowMs: number): '' | 'initial' | 'unknown kid' | 'refresh' {
  if (nowMs - st.lastTryMs < cfg.jwks_retry_sec * 1000) return '';
  if (!st.hasKeys) return 'initial';
  if (st.miss) return 'unknown kid';
  if (nowMs - st.lastGoodMs >= cfg.jwks_refresh_sec * 1000) return 'refresh';
  return '';
}

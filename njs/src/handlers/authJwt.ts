/**
 * gw.jwt.authJwt: `js_set $gw_jwt` (nginx/jwt-http.conf), read by gw.auth in the rewrite phase when the
 * credential looks like a JWT; a handler group of its own, so API-key requests never load this code.
 * Verifies the token (ngx/jwks.ts), checks its claims and maps them onto the per-client policy API
 * keys have (core/jwt.ts), then applies the same rate limit. Writes the same variables as the
 * API-key path: $gw_key_id, $gw_key_models, $gw_tier, and on refusal $gw_auth_error,
 * $gw_error_code, $gw_retry_after.
 *
 * Value: "ok", "401", "429", or "none" (no token source configured, or not a JWT: an API key).
 * It is a verdict object that nginx turns into that string after the verification chain has
 * settled, inside this js_set call (ngx/jwks.ts explains why); it reads "401" until the chain
 * accepts, so whatever does not settle is a refusal.
 * A token whose signature verified in the last minute (any worker) skips the crypto (ngx/jwks.ts).
 * Every refusal is the one invalid_api_key answer; the reason goes to the error log, without the
 * token or its signature.
 */
import { gwError, GwError } from '../core/errors';
import { errorText } from '../core/logText';
import { candidateKeys } from '../core/jwks';
import { algSpec, checkClaims, JWT_DEFAULTS, JwtConfig, jwtCandidate, logQuoted, parseJwt, policyFromClaims } from '../core/jwt';
import { logFailure, requestLogger } from '../ngx/log';
import { grant } from '../ngx/policy';
import { currentKeys, hsSecret, jwtEnabled, noteUnknownKid, recentlyVerified, rememberVerified, tokenDigest, verifyAsymmetric, verifyHmac } from '../ngx/jwks';
import { sharedRoutes } from '../ngx/table';
import { setVar } from '../ngx/vars';

export interface Verdict {
  v: string;
  toString(): string;
}

function verdictToString(this: Verdict): string {
  return this.v;
}

const INVALID = 'Incorrect API key provided, or the key was revoked or has expired.';

export function jwtConfig(): JwtConfig {
  const t = sharedRoutes() as unknown as { jwt?: JwtConfig };
  return t.jwt !== undefined ? t.jwt : JWT_DEFAULTS;
}

export function authJwt(r: NginxHTTPRequest): string {
  try {
    const token = jwtEnabled() ? jwtCandidate(r.headersIn['Authorization']) : null;
    if (token === null) return 'none';
    // nginx reads the verdict as a string only after the chain has settled.
    return verdict(r, token) as unknown as string;
  } catch (e) {
    logFailure(requestLogger(r), 'authJwt', e);
    setVar(r, 'gw_auth_error', gwError('invalid_api_key', INVALID).body);
    setVar(r, 'gw_error_code', 'invalid_api_key');
    return '401';
  }
}

function verdict(r: NginxHTTPRequest, token: string): Verdict {
  // Fail closed: until the chain below says otherwise, this is a refusal (gw.auth supplies the
  // error body when none was set; building it here would cost every good request the catalogue).
  const out: Verdict = { v: '401', toString: verdictToString };
  function refuse(e: GwError): void {
    setVar(r, 'gw_auth_error', e.body);
    setVar(r, 'gw_error_code', e.code);
    out.v = String(e.status);
  }
  function invalid(reason: string): void {
    requestLogger(r).warn('jwt: refused: ' + reason);
    refuse(gwError('invalid_api_key', INVALID));
  }
  const cfg = jwtConfig();
  const p = parseJwt(token, cfg);
  if (!p.ok) {
    invalid(p.reason);
    return out;
  }
  const jwt = p.jwt;
  const spec = algSpec(jwt.alg);
  if (spec === null) {
    invalid('alg not allowed');
    return out;
  }
  /** After a good signature: claims, policy, rate limit; the only place that lets a token pass. */
  function admit(): void {
    const why = checkClaims(jwt.claims, cfg, Math.floor(Date.now() / 1000));
    if (why !== '') return invalid(why);
    const pol = policyFromClaims(jwt.claims, cfg);
    if (!pol.ok) return invalid(pol.reason);
    const limited = grant(r, pol.policy, 'token');
    if (limited !== null) return refuse(limited);
    out.v = 'ok';
  }
  const digest = tokenDigest(token);
  if (recentlyVerified(digest)) {
    admit();
    return out;
  }
  const sig = Buffer.from(jwt.signature, 'base64url');
  // Only the canonical spelling: otherwise the unused low bits of the last character would let one
  // signature be written several ways (a token that is not byte-for-byte the one issued).
  if (sig.toString('base64url') !== jwt.signature) {
    invalid('signature is not canonical base64url');
    return out;
  }
  let verified: Promise<boolean>;
  if (spec.kind === 'secret') {
    const s = hsSecret();
    if (s.problem !== '') {
      requestLogger(r).warn('jwt: ' + s.problem);
      invalid(jwt.alg + ' token without a usable secret');
      return out;
    }
    verified = verifyHmac(spec, s.secret, jwt.signingInput, sig);
  } else {
    const ks = currentKeys();
    for (let i = 0; i < ks.problems.length; i++) requestLogger(r).warn('jwks: ' + ks.problems[i]);
    const keys = candidateKeys(ks.keys, jwt.alg, jwt.kid);
    if (keys.length === 0) {
      if (jwt.kid !== '' || ks.keys.length === 0) noteUnknownKid();
      invalid('no ' + spec.kind + ' key for ' + jwt.alg + (jwt.kid !== '' ? ' with kid ' + logQuoted(jwt.kid, 64) : '') + ' in the JWKS');
      return out;
    }
    verified = verifyAsymmetric(spec, keys, jwt.signingInput, sig);
  }
  verified.then(function (ok) {
    if (!ok) return invalid('bad signature (' + jwt.alg + ')');
    rememberVerified(digest);
    admit();
  }).catch(function (e) {
    requestLogger(r).error('jwt: verification failed: ' + errorText(e));
    refuse(gwError('invalid_api_key', INVALID));
  });
  return out;
}

/**
 * gw.auth: `js_set $gw_auth` evaluated by `if` in `location /v1/` (rewrite phase), so a request
 * without a valid key is refused BEFORE nginx reads its body: a 50 MB upload from a stranger costs
 * nothing. Returns "ok" (pass), "401", "429" or "500". Fail closed: nginx lets a request through
 * only on "ok"; anything else, an empty value from a throw included, goes to @gw_auth_refused
 * (gateway-server.conf), which answers 401/429 with $gw_auth_error and everything else with 500.
 * Reads: $gw_auth_mode ("off" skips everything), headers Authorization / api-key / x-api-key.
 * Writes: $gw_key_id, $gw_key_models, $gw_tier on success; $gw_auth_error (OpenAI JSON body),
 * $gw_error_code and $gw_retry_after on refusal.
 */
import { bearerKey, headerKey, keyActive, keyRefusal, looksLikeJwt, plainBearer, wellFormedKey } from '../core/keys';
import { gwError, GwError } from '../core/errors';
import { lookup, sha256hex } from '../ngx/keyStore';
import { grantKey } from '../ngx/policy';
import { getVar, setVar } from '../ngx/vars';

/** The only value nginx lets through (`if ($gw_auth != ok)` in gateway-server.conf). */
const PASS = 'ok';

function refuse(r: NginxHTTPRequest, e: GwError): string {
  setVar(r, 'gw_auth_error', e.body);
  setVar(r, 'gw_error_code', e.code);
  return String(e.status);
}

/**
 * What looks like a signed token is judged by $gw_jwt (gw.authJwt, nginx/jwt-http.conf), whose
 * code loads only for such requests: "ok", a refusal status, or "none" (not a token, or tokens not
 * configured: an API key after all, so null here). docs/jwt.md
 */
function jwtVerdict(r: NginxHTTPRequest): string | null {
  const jwt = r.variables['gw_jwt'];
  if (jwt === 'ok') return PASS;
  if (jwt === undefined || jwt === 'none') return null;
  if (getVar(r, 'gw_auth_error') === '') return refuse(r, gwError('invalid_api_key'));
  return jwt === '429' ? '429' : '401';
}

export function auth(r: NginxHTTPRequest): string {
  try {
    if (getVar(r, 'gw_auth_mode') === 'off') return PASS;
    const h = r.headersIn;
    const a = h['Authorization'];
    // The common case, "Bearer <key>", is hashed as it stands, without parsing the header: a hit
    // on a key the gateway made (well-formed by construction) or on a well-formed key is the
    // key the full parse below would find. Anything else takes the full parse.
    const tok = a !== undefined ? plainBearer(a) : null;
    let k = tok !== null ? lookup(sha256hex(tok), r) : null;
    if (k !== null && (k[6] === 'admin' || wellFormedKey(tok as string))) return admit(r, k);
    // Each header is read once, and api-key / x-api-key only when the ones before are absent
    // (core/keys.ts presentedKey: the same precedence).
    let presented: string | null;
    if (a !== undefined && a !== '') {
      presented = bearerKey(a);
      if (presented !== null ? looksLikeJwt(presented) : /^Bearer[ \t]+eyJ/i.test(a)) {
        const v = jwtVerdict(r);
        if (v !== null) return v;
      }
    } else {
      const x = h['api-key'];
      presented = headerKey(x !== undefined && x !== '' ? x : h['x-api-key']);
    }
    if (presented === null || presented === '') return refuseKey(r, presented);
    // The guess above already looked this key up when it is the same string.
    if (presented !== tok) k = lookup(sha256hex(presented), r);
    return k !== null ? admit(r, k) : refuseKey(r, presented);
  } catch (e) {
    r.error('gw: auth failed: ' + String(e));
    return refuse(r, gwError('internal_error'));
  }
}

function refuseKey(r: NginxHTTPRequest, presented: string | null): string {
  const why = keyRefusal(presented);
  return refuse(r, gwError(why.code, why.message));
}

/** k: [id, state, rpm, burst, tier, models, source] (ngx/keyStore.ts lookup) of the presented key. */
function admit(r: NginxHTTPRequest, k: string[]): string {
  const now = Date.now();
  if (k[1] !== '0' && !keyActive(k[1], now)) return refuseKey(r, 'x');
  const limited = grantKey(r, k[0], k[5], k[4], +k[2], +k[3], now, 'API key');
  return limited !== null ? refuse(r, limited) : PASS;
}

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
import { bearerKey, headerKey, keyActive, keyRefusal, plainBearer, wellFormedKey } from '../core/keys';
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

export function auth(r: NginxHTTPRequest): string {
  try {
    if (getVar(r, 'gw_auth_mode') === 'off') return PASS;
    const h = r.headersIn;
    const a = h['Authorization'];
    // The common case, "Bearer <key>", is hashed as it stands, without parsing the header: a hit
    // on a key the gateway made (well-formed by construction) or on a well-formed key is the
    // key the full parse below would find. Anything else takes the full parse.
    const tok = a !== undefined ? plainBearer(a) : null;
    // k: [id, state, rpm, burst, tier, models, source] (ngx/keyStore.ts lookup) of the presented key.
    let k = tok !== null ? lookup(sha256hex(tok), r) : null;
    if (k === null || (k[6] !== 'admin' && !wellFormedKey(tok as string))) {
      // Each header is read once, and api-key / x-api-key only when the ones before are absent
      // (core/keys.ts presentedKey: the same precedence).
      let presented: string | null;
      if (a !== undefined && a !== '') {
        // What looks like a signed token is judged by $gw_jwt (gw.jwt.authJwt, nginx/jwt-http.conf), whose
        // code loads only for such requests: "ok", a refusal status, or "none" (not a token, or tokens
        // not configured: an API key after all). docs/jwt.md. Tested before the key is parsed: a token
        // is long, and the key's regex would walk all of it.
        if (/^Bearer[ \t]+eyJ/i.test(a)) {
          const jwt = r.variables['gw_jwt'];
          if (jwt === 'ok') return PASS;
          if (jwt !== undefined && jwt !== 'none') {
            if (getVar(r, 'gw_auth_error') === '') return refuse(r, gwError('invalid_api_key'));
            return jwt === '429' ? '429' : '401';
          }
        }
        presented = bearerKey(a);
      } else {
        const x = h['api-key'];
        presented = headerKey(x !== undefined && x !== '' ? x : h['x-api-key']);
      }
      if (presented === null || presented === '') return refuse(r, keyRefusal(presented));
      // The guess above already looked this key up when it is the same string (then it missed: a
      // well-formed guess that hits is taken).
      k = presented !== tok ? lookup(sha256hex(presented), r) : null;
      if (k === null) return refuse(r, keyRefusal(presented));
    }
    const now = Date.now();
    if (k[1] !== '0' && !keyActive(k[1], now)) return refuse(r, keyRefusal('x'));
    const limited = grantKey(r, k[0], k[5], k[4], +k[2], +k[3], now, 'API key');
    return limited !== null ? refuse(r, limited) : PASS;
  } catch (e) {
    r.error('gw: auth failed: ' + String(e));
    return refuse(r, gwError('internal_error'));
  }
}

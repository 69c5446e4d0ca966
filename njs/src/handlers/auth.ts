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
import { keyActive, plainBearer, wellFormedKey } from '../core/keys';
import { gwError } from '../core/errors';
import { lookup, sha256hex } from '../ngx/keyStore';
import { grantKey } from '../ngx/policy';
import { presentedKey, refuse, refuseKey } from '../ngx/authRefuse';

/** The only value nginx lets through (`if ($gw_auth != ok)` in gateway-server.conf). */
const PASS = 'ok';

export function auth(r: NginxHTTPRequest): string {
  try {
    if (r.variables['gw_auth_mode'] === 'off') return PASS; // getVar, inline
    const a = r.headersIn['Authorization'];
    // The common case, "Bearer <key>", is hashed as it stands, without parsing the header: a hit
    // on a key the gateway made (well-formed by construction) or on a well-formed key is the
    // key the full parse below would find. Anything else takes the full parse.
    const tok = a !== undefined ? plainBearer(a) : null;
    // k: [id, state, rpm, burst, tier, models, source] (ngx/keyStore.ts lookup) of the presented key.
    let k = tok !== null ? lookup(sha256hex(tok), r) : null;
    if (k === null || (k[6] !== 'admin' && !wellFormedKey(tok as string))) {
      // Anything else: the full parse of the key headers, off the common path (ngx/authRefuse.ts).
      const p = presentedKey(r, a, tok);
      if (typeof p === 'string') return p;
      k = p;
    }
    const now = Date.now();
    if (k[1] !== '0' && !keyActive(k[1], now)) return refuseKey(r, 'x');
    const limited = grantKey(r, k[0], k[5], k[4], +k[2], +k[3], now, 'API key');
    return limited !== null ? refuse(r, limited) : PASS;
  } catch (e) {
    r.error('gw: auth failed: ' + String(e));
    return refuse(r, gwError('internal_error'));
  }
}

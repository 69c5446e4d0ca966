/**
 * gw.auth's rare paths (handlers/auth.ts): a key header that is not a plain "Bearer <key>" the
 * gateway knows, a signed token, and every refusal. Apart from the handler so that a request with
 * a known key never instantiates this code: it exports functions only and can be loaded as a cold
 * module (njs/handlers.json `cold`).
 */
import { bearerKey, headerKey, keyRefusal } from '../core/keys';
import { gwError, GwError } from '../core/errors';
import { lookup, sha256hex } from './keyStore';
import { getVar, setVar } from './vars';

/** Writes the refusal's variables (gateway-server.conf answers with them); the status for $gw_auth. */
export function refuse(r: NginxHTTPRequest, e: GwError): string {
  setVar(r, 'gw_auth_error', e.body);
  setVar(r, 'gw_error_code', e.code);
  return String(e.status);
}

/** refuse() with keyRefusal(presented) (core/keys.ts): a missing, malformed or unknown key. */
export function refuseKey(r: NginxHTTPRequest, presented: string | null): string {
  return refuse(r, keyRefusal(presented));
}

/**
 * The full parse of the request's key headers, for what the plain-Bearer guess did not settle
 * (`tok`: the guess, looked up already and missed, or null): the key's fields as lookup() gives
 * them, or the status to return ("ok" for a valid signed token; a refusal, its variables written).
 */
export function presentedKey(r: NginxHTTPRequest, a: string | undefined, tok: string | null): string[] | string {
  const h = r.headersIn;
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
      if (jwt === 'ok') return 'ok';
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
  if (presented === null || presented === '') return refuseKey(r, presented);
  // The guess already looked this key up when it is the same string (then it missed: a
  // well-formed guess that hits is taken).
  const k = presented !== tok ? lookup(sha256hex(presented), r) : null;
  return k !== null ? k : refuseKey(r, presented);
}

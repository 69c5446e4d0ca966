/**
 * The admin token check shared by every /admin/ handler. The token comes from GW_ADMIN_TOKEN or
 * the file GW_ADMIN_TOKEN_FILE (a Docker secret, say); nginx passes those only when nginx.conf has
 * `env GW_ADMIN_TOKEN; env GW_ADMIN_TOKEN_FILE;` in its main context.
 */
import fs from 'fs';
import { gwError, GwError } from '../core/errors';
import { guard } from './guard';
import { sha256hex } from './keyStore';
import { replyError } from './reply';

function adminToken(): string {
  const direct = process.env.GW_ADMIN_TOKEN;
  if (typeof direct === 'string' && direct.trim() !== '') return direct.trim();
  const file = process.env.GW_ADMIN_TOKEN_FILE;
  if (typeof file === 'string' && file !== '') {
    try {
      return fs.readFileSync(file, 'utf8').trim();
    } catch (e) {
      return '';
    }
  }
  return '';
}

/** Compares digests so the time taken does not depend on how much of the token matched. */
function sameSecret(a: string, b: string): boolean {
  const x = sha256hex(a), y = sha256hex(b);
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x.charCodeAt(i) ^ y.charCodeAt(i);
  return diff === 0;
}

/** null when the request carries the admin token, else the error to answer with. */
export function checkAdmin(r: Pick<NginxHTTPRequest, 'headersIn'>): GwError | null {
  const token = adminToken();
  if (token === '') return gwError('admin_disabled');
  const h = r.headersIn['Authorization'];
  const m = typeof h === 'string' ? /^Bearer[ \t]+(\S{1,512})[ \t]*$/i.exec(h) : null;
  if (!m || !sameSecret(m[1], token)) return gwError('invalid_admin_token');
  return null;
}

/**
 * Operator detail on the client-facing port (/metrics, /readyz's per-server detail): only for a
 * client address the `geo $gw_ops_trusted` block marks "1" (nginx/discovery-http.conf; a config
 * without it trusts no address), or a request carrying the admin token.
 */
export function opsAllowed(r: Pick<NginxHTTPRequest, 'headersIn' | 'variables'>): boolean {
  if (r.variables.gw_ops_trusted === '1') return true;
  return checkAdmin(r) === null;
}

/**
 * Wraps an admin handler: the admin token is checked first (401/503 otherwise), then the body runs
 * under guard() (anything it throws becomes a logged OpenAI-shaped 500).
 */
export function adminHandler(name: string, body: (r: NginxHTTPRequest) => void): (r: NginxHTTPRequest) => void {
  return function (r: NginxHTTPRequest): void {
    guard(r, name, function () {
      const denied = checkAdmin(r);
      if (denied !== null) {
        replyError(r, denied);
        return;
      }
      body(r);
    });
  };
}

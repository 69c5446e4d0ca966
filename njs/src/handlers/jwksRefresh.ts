/**
 * gw.jwt.jwksRefresh: `js_periodic` in nginx/jwt-server.conf (one worker). Keeps the JWKS of
 * GW_JWKS_URL (or GW_JWKS_FILE) in the gw_jwks dict: a regular refetch every jwt.jwks_refresh,
 * an early one when a request named an unknown kid, at most one attempt per jwt.jwks_retry. A
 * failed fetch or an unusable answer keeps the last good set (ngx/jwks.ts).
 * Reads: env GW_JWKS_URL, GW_JWKS_FILE; gateway.json "jwt". Writes: the gw_jwks dict only.
 */
import { jwksDue } from '../core/jwks';
import { JWT_DEFAULTS, JwtConfig } from '../core/jwt';
import { jwksFile, jwksUrl, markTry, refreshState, storeJwks, syncJwksFile } from '../ngx/jwks';
import { logFailure, makeLogger } from '../ngx/log';
import { sharedRoutes } from '../ngx/table';

const MAX_JWKS_BYTES = 262144;

export async function jwksRefresh(s: NginxPeriodicSession): Promise<void> {
  void s;
  const log = makeLogger(ngx);
  try {
    if (jwksFile() !== '') {
      const problems = syncJwksFile();
      for (let i = 0; i < problems.length; i++) log.warn('jwks: ' + problems[i]);
      return;
    }
    const url = jwksUrl();
    if (url === '') return;
    const t = sharedRoutes() as unknown as { jwt?: JwtConfig };
    const cfg = t.jwt !== undefined ? t.jwt : JWT_DEFAULTS;
    const now = Date.now();
    const why = jwksDue(refreshState(), cfg, now);
    if (why === '') return;
    markTry(now);
    let text = '';
    try {
      const res = await ngx.fetch(url, { max_response_body_size: MAX_JWKS_BYTES, headers: { Accept: 'application/json' } });
      if (res.status !== 200) throw new Error('HTTP ' + res.status);
      text = await res.text();
    } catch (e) {
      log.warn('jwks: fetching GW_JWKS_URL (' + why + ') failed: ' + String(e) + '; the previous key set is kept');
      return;
    }
    const r = storeJwks(text, 'url');
    for (let i = 0; i < r.problems.length; i++) log.warn('jwks: GW_JWKS_URL: ' + r.problems[i]);
    if (r.stored > 0) log.info('jwks: ' + r.stored + ' keys from GW_JWKS_URL (' + why + ')');
  } catch (e) {
    logFailure(log, 'jwksRefresh', e);
  }
}

/**
 * gw.keySync: `js_periodic gw.keySync interval=5s;` (gateway-server.conf). Re-reads GW_KEYS_FILE
 * and the state file when they change on disk, so ops can roll keys from git or a secret store
 * and several gateways sharing a state volume converge within one interval. Runs on worker 0.
 */
import { ensureLoaded, syncSource } from '../ngx/keyStore';
import { makeLogger } from '../ngx/log';

export function keySync(): void {
  const log = makeLogger(ngx);
  try {
    const problems = ensureLoaded().concat(syncSource('file', false), syncSource('admin', false));
    for (let i = 0; i < problems.length; i++) log.warn('keys: ' + problems[i]);
  } catch (e) {
    log.error('keySync failed: ' + String(e));
  }
}

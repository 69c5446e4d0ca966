/**
 * gw.ops.keySync: `js_periodic gw.ops.keySync interval=5s;` (gateway-server.conf). Re-reads GW_KEYS_FILE
 * and the state file when they change on disk, so ops can roll keys from git or a secret store.
 * Runs on worker 0, under the key store's lock like every admin change (keyStore.ts), so a file
 * change and an admin call never interleave; when the lock stays busy it tries again next round.
 */
import { exclusive, loadIfNeeded, syncSource, warnProblems } from '../ngx/keyStore';
import { logFailure, makeLogger } from '../ngx/log';

/** Well inside the 5 s interval: nginx cancels a round still running when the next one is due. */
const SYNC_LOCK_WAIT_MS = 2000;

export function keySync(): Promise<void> {
  const log = makeLogger(ngx);
  return exclusive(SYNC_LOCK_WAIT_MS, function (): string[] {
    return loadIfNeeded().concat(syncSource('file', false), syncSource('admin', false));
  }).then(function (res) {
    if (!res.ok) return;
    warnProblems(log, res.value);
  }).catch(function (e) {
    logFailure(log, 'keySync', e);
  });
}

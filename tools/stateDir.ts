/**
 * The gateway's state folder (GW_STATE_DIR): owned by the user the nginx workers run as, mode
 * 0700, so nobody else can put a keys-state.json there (the gateway refuses a looser one at load,
 * docs/api-keys.md). `npm start` and the test stacks both make it here.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync } from 'node:fs';
import { NginxRuntime } from './findNginx';

/** uid/gid of the workers when nginx starts as root (its `user`, default from `nginx -V`, else nobody); null otherwise. */
export function workerIds(rt: Pick<NginxRuntime, 'bin'>): { user: string; uid: number; gid: number } | null {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return null;
  const v = spawnSync(rt.bin, ['-V'], { encoding: 'utf8' });
  const user = /--user=(\S+)/.exec(`${v.stdout}${v.stderr}`)?.[1] ?? 'nobody';
  const id = (flag: string) => Number(execFileSync('id', [flag, user], { encoding: 'utf8' }).trim());
  return { user, uid: id('-u'), gid: id('-g') };
}

export function makeStateDir(path: string, rt: Pick<NginxRuntime, 'bin'>): void {
  mkdirSync(path, { recursive: true, mode: 0o700 });
  chmodSync(path, 0o700);
  const w = workerIds(rt);
  if (w) chownSync(path, w.uid, w.gid);
}

/**
 * Creates the host-side secrets the compose stacks mount as Docker secrets (never in an image, never
 * committed: compose/secrets/ is git-ignored), leaving any file that already exists untouched:
 *
 *   gw_admin_token   random admin token for the key-management API (GW_ADMIN_TOKEN_FILE), 0600
 *   gw_keys.json     bootstrap API keys, hashes only (GW_KEYS_FILE), 0644 so the workers can read
 *                    it in place: one key "dev" for every model, whose secret is ...
 *   dev_api_key      ... this file (0600; never mounted). Drop the entry when you manage real keys.
 *   tls.crt/tls.key  with --tls: a self-signed certificate for trying compose/tls.yml (use your own)
 *
 *   npm run compose:secrets [-- --tls] [-- --dir <folder>]     (default folder: $GW_SECRETS_DIR or compose/secrets)
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../tools/config';

export function writeComposeSecrets(dir: string, opts: { tls?: boolean } = {}): string[] {
  mkdirSync(dir, { recursive: true });
  const made: string[] = [];
  const put = (name: string, text: () => string, mode: number) => {
    const p = join(dir, name);
    if (existsSync(p)) return;
    writeFileSync(p, text(), { mode });
    chmodSync(p, mode);
    made.push(p);
  };
  put('gw_admin_token', () => randomBytes(32).toString('hex'), 0o600);
  if (!existsSync(join(dir, 'gw_keys.json'))) {
    put('dev_api_key', () => `sk-gw-${randomBytes(24).toString('base64url')}`, 0o600);
    const devKey = readFileSync(join(dir, 'dev_api_key'), 'utf8').trim();
    const entry = { id: 'dev', label: 'npm run compose:secrets', models: '*', hash: `sha256:${createHash('sha256').update(devKey).digest('hex')}` };
    put('gw_keys.json', () => JSON.stringify({ keys: [entry] }, null, 1) + '\n', 0o644);
  }
  if (opts.tls && !existsSync(join(dir, 'tls.crt'))) {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '30', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', join(dir, 'tls.key'), '-out', join(dir, 'tls.crt')], { stdio: 'ignore' });
    chmodSync(join(dir, 'tls.key'), 0o600);
    made.push(join(dir, 'tls.crt'), join(dir, 'tls.key'));
  }
  return made;
}

if (process.argv[1] && /compose-secrets\.[cm]?[jt]s$/.test(process.argv[1])) {
  const args = process.argv.slice(2);
  const i = args.indexOf('--dir');
  const dir = i >= 0 ? args[i + 1] : process.env.GW_SECRETS_DIR || join(projectRoot, 'compose/secrets');
  const made = writeComposeSecrets(dir, { tls: args.includes('--tls') });
  console.log(made.length ? `created ${made.join(', ')}` : `nothing to do: the secrets in ${dir} already exist`);
}

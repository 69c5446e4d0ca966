/**
 * `npm start`: runs the gateway in the foreground on 127.0.0.1:8080 (GW_LISTEN) with the built
 * bundle and the routing config (GW_CONFIG, default nginx/gateway.json). Every upstream server on
 * 127.0.0.1 that nothing listens on gets a mock vLLM backend serving that upstream's models, so a
 * machine with no GPU gets a working gateway; point GW_CONFIG at your vLLM servers to use them
 * (GW_MOCKS=0 never starts mocks). Ctrl-C stops everything.
 * API keys are on: a dev key is made once into .run/dev-key (its hash into .run/dev-keys.json, the
 * GW_KEYS_FILE) and an admin token into .run/admin-token; GW_AUTH=off runs without keys.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from './gen-config.mjs';
import { NGINX_ENV, projectRoot, renderNginxConf } from '../test/support/config';
import { findNginx } from '../test/support/findNginx';
import { MockVllm, startMockVllm } from '../test/support/mockVllm';
import { startNginx, waitForPort } from '../test/support/nginx';

const configPath = process.env.GW_CONFIG || join(projectRoot, 'nginx/gateway.json');
const listen = process.env.GW_LISTEN || '127.0.0.1:8080';
const [host, portText] = listen.split(/:(?=\d+$)/);
const cfg = loadConfig(configPath);
const rt = findNginx();

const mocks: MockVllm[] = [];
if (process.env.GW_MOCKS !== '0') {
  for (const [name, up] of Object.entries(cfg.upstreams)) {
    const models = Object.entries(cfg.models).filter(([, m]) => m.upstream === name).map(([n]) => n);
    for (const server of up.servers) {
      const m = /^(127\.0\.0\.1|localhost):(\d+)$/.exec(server.split(' ')[0]);
      if (!m || (await waitForPort('127.0.0.1', Number(m[2]), 200))) continue;
      mocks.push(await startMockVllm({ name: `mock-${name}`, models, port: Number(m[2]), latencyMs: Number(process.env.GW_MOCK_LATENCY_MS ?? 20) }));
      console.log(`mock vLLM "${name}" on 127.0.0.1:${m[2]} serving ${models.join(', ')}`);
    }
  }
}

const prefix = join(projectRoot, '.run');
mkdirSync(prefix, { recursive: true });
const stateDir = join(prefix, 'state');
mkdirSync(stateDir, { recursive: true });
chmodSync(stateDir, 0o777); // workers run as an unprivileged user when nginx starts as root

function secretFile(name: string, make: () => string): string {
  const p = join(prefix, name);
  if (!existsSync(p)) writeFileSync(p, make(), { mode: 0o600 });
  return readFileSync(p, 'utf8').trim();
}
const auth = process.env.GW_AUTH !== 'off';
const devKey = secretFile('dev-key', () => `sk-gw-${randomBytes(24).toString('base64url')}`);
const keysFile = process.env.GW_KEYS_FILE || join(prefix, 'dev-keys.json');
if (!process.env.GW_KEYS_FILE) {
  writeFileSync(keysFile, JSON.stringify({ keys: [{ id: 'dev', label: 'npm start', models: '*', hash: `sha256:${createHash('sha256').update(devKey).digest('hex')}` }] }, null, 1));
}
const adminToken = process.env.GW_ADMIN_TOKEN || secretFile('admin-token', () => randomBytes(24).toString('base64url'));
// The admin API stays on loopback unless asked otherwise, even when the gateway listens on 0.0.0.0.
const adminListen = process.env.GW_ADMIN_LISTEN || `127.0.0.1:${Number(portText) + 1}`;
const conf = renderNginxConf({
  prefix, listen, adminListen, workers: Number(process.env.GW_WORKERS ?? 2), jsModule: rt.jsModule,
  patch: auth ? undefined : (c) => c.replace('set $gw_auth_mode on;', 'set $gw_auth_mode off;'),
});
const env = { ...NGINX_ENV, GW_KEYS_FILE: keysFile, GW_STATE_DIR: process.env.GW_STATE_DIR || stateDir, GW_ADMIN_TOKEN: adminToken };
const nginx = await startNginx(rt, { prefix, conf, host, port: Number(portText), env });
const base = `http://${listen}`;
console.log(`
gateway: ${base}  (nginx ${rt.version}, config ${configPath}, logs in ${prefix}/logs)
try:     curl ${base}/v1/chat/completions${auth ? ' -H "Authorization: Bearer $(cat .run/dev-key)"' : ''} \\
           -d '{"model":"${Object.keys(cfg.models)[0]}","messages":[{"role":"user","content":"hi"}]}'
admin:   curl http://${adminListen}/admin/keys -H "Authorization: Bearer $(cat .run/admin-token)"${auth ? '' : '\nAPI keys are OFF (GW_AUTH=off).'}
Ctrl-C stops the gateway${mocks.length ? ' and the mock backends' : ''}.`);

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await nginx.stop();
  await Promise.all(mocks.map((m) => m.close()));
  process.exit(0);
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

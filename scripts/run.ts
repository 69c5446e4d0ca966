/**
 * `npm start`: runs the gateway in the foreground on 127.0.0.1:8080 (GW_LISTEN) with the built
 * bundle and the routing config (GW_CONFIG, default nginx/gateway.json). Every upstream server on
 * 127.0.0.1 that nothing listens on gets a mock vLLM backend serving that upstream's models, so a
 * machine with no GPU gets a working gateway; point GW_CONFIG at your vLLM servers to use them
 * (GW_MOCKS=0 never starts mocks). Ctrl-C stops everything.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from './gen-config.mjs';
import { projectRoot, renderNginxConf } from '../test/support/config';
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
const conf = renderNginxConf({ prefix, listen, workers: Number(process.env.GW_WORKERS ?? 2), jsModule: rt.jsModule });
const nginx = await startNginx(rt, { prefix, conf, host, port: Number(portText) });
const base = `http://${listen}`;
console.log(`
gateway: ${base}  (nginx ${rt.version}, config ${configPath}, logs in ${prefix}/logs)
try:     curl ${base}/v1/chat/completions -H 'content-type: application/json' \\
           -d '{"model":"${Object.keys(cfg.models)[0]}","messages":[{"role":"user","content":"hi"}]}'
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

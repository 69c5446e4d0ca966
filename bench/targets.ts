/**
 * The benchmark's targets, all on 127.0.0.1 with free ports, sharing one set of mock backends:
 *   direct   the mock backend itself
 *   plain    nginx with proxy_pass only (bench/plain-nginx.conf), one port per backend
 *   gateway  nginx/nginx.conf.example with the njs bundle (tools/stack.ts startStack), with
 *            the features in scenarios.ts GATEWAY_FEATURES
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256 } from '../tools/clients';
import { NGINX_ENV, projectRoot } from '../tools/config';
import { NginxRuntime } from '../tools/findNginx';
import { keyPair, mint, publicJwk } from '../tools/jwt';
import { BAD_LOG, NginxHandle, startNginx } from '../tools/nginx';
import { freePort, ModelSpec, Stack, StackOptions, startStack } from '../tools/stack';
import { MockFleet, startMockFleet } from './mocks';
import { childPids } from './procstat';
import { BACKENDS, FEATURE_VARIANTS, GATEWAY_FEATURES, GatewayVariant, LOGS_OFF, MODELS, ON_DEMAND, TargetId } from './scenarios';

export interface Targets {
  fleet: MockFleet;
  plain: NginxHandle;
  gateway: Stack;
  workers: number;
  /** Base URL a request for `upstream` takes on `target`. */
  baseUrl(target: TargetId, upstream: string): string;
  headers(target: TargetId): Record<string, string>;
  /** nginx worker pids of the target (none for direct), read afresh on each call. */
  workerPids(target: TargetId): number[];
  /** error.log lines that mean the bench is broken ([alert], [emerg], crashes, njs exceptions). */
  badLogLines(): string[];
  stop(): Promise<void>;
}

export function renderPlain(prefix: string, workers: number, mocks: Record<string, number>, ports: Record<string, number>): string {
  const upstreams = Object.entries(mocks).map(([up, port]) =>
    `    upstream ${up} {\n        least_conn;\n        server 127.0.0.1:${port} max_fails=2 fail_timeout=10s;\n        keepalive 32;\n    }`).join('\n');
  const servers = Object.keys(mocks).map((up) =>
    `    server {\n        listen 127.0.0.1:${ports[up]};\n        location / {\n            proxy_pass http://${up};\n        }\n    }`).join('\n');
  return readFileSync(join(projectRoot, 'bench/plain-nginx.conf'), 'utf8')
    .replace(/^__UPSTREAMS__$/m, upstreams)
    .replace(/^__SERVERS__$/m, servers)
    .replace(/__PREFIX__/g, prefix)
    .replace(/__WORKERS__/g, String(workers));
}

/**
 * A gateway on the shared mocks: nginx.conf.example with GATEWAY_FEATURES, minus what `variant`
 * switches off. Returns the stack and the headers its requests need (the API key).
 */
export async function startGateway(fleet: MockFleet, o: { workers: number; variant: GatewayVariant; rt?: NginxRuntime; patch?: (conf: string) => string }): Promise<{ stack: Stack; headers: Record<string, string> }> {
  const v = o.variant;
  const models: Record<string, ModelSpec> = {};
  for (const [name, m] of Object.entries(MODELS)) {
    if (fleet.ports[m.upstream] === undefined) continue; // a backend this run did not start (ON_DEMAND)
    models[name] = v.queue ? { ...m, ...GATEWAY_FEATURES.models[name] } : { ...m };
  }
  const upstreams: StackOptions['upstreams'] = {};
  for (const [up, port] of Object.entries(fleet.ports)) upstreams[up] = { servers: [`127.0.0.1:${port}`] };
  const extra: Partial<StackOptions> = v.logs ? {} : { includePatches: LOGS_OFF.includes };
  const patches = [...(v.logs ? [] : [LOGS_OFF.conf]), ...(o.patch ? [o.patch] : [])];
  if (patches.length) extra.render = { patch: (c: string) => patches.reduce((acc, f) => f(acc), c) };
  if (o.rt) extra.rt = o.rt;
  const jwt = v.jwt ? benchJwt(v.jwt) : null;
  if (jwt) extra.env = jwt.env;
  const stack = await startStack({
    ...GATEWAY_FEATURES.stack, ...extra, auth: v.auth && GATEWAY_FEATURES.stack.auth === true, backends: {}, upstreams, models, workers: o.workers,
  } as StackOptions);
  const headers: Record<string, string> = { ...GATEWAY_FEATURES.headers };
  try {
    if (!v.logs && !/access_log off;/.test(readFileSync(stack.nginx.confPath, 'utf8'))) {
      throw new Error('variant ' + v.id + ': LOGS_OFF did not switch the access log off (nginx.conf.example changed?)');
    }
    if (jwt) {
      headers.authorization = `Bearer ${jwt.token}`;
      const stop = stack.stop;
      stack.stop = async () => {
        await stop();
        rmSync(jwt.dir, { recursive: true, force: true });
      };
    } else if (v.auth && GATEWAY_FEATURES.key) {
      const res = await fetch(`${stack.adminUrl}/admin/keys`, {
        method: 'POST', body: JSON.stringify(GATEWAY_FEATURES.key),
        headers: { authorization: `Bearer ${stack.adminToken}`, 'content-type': 'application/json' },
      });
      const out = (await res.json()) as { key?: string };
      if (res.status !== 201 || !out.key) throw new Error(`creating the bench API key: ${res.status} ${JSON.stringify(out).slice(0, 300)}`);
      headers.authorization = `Bearer ${out.key}`;
    }
  } catch (e) {
    await stack.stop();
    throw e;
  }
  return { stack, headers };
}

/**
 * A token with the bench key's policy (GATEWAY_FEATURES.key) for a JWT variant, and the env that
 * makes the gateway verify it: the secret for HS256, a JWKS file for RS256.
 */
function benchJwt(alg: 'HS256' | 'RS256'): { env: Record<string, string>; token: string; dir: string } {
  const k = GATEWAY_FEATURES.key;
  const claims = { sub: 'bench-jwt', models: k?.models ?? '*', rpm: k?.rpm ?? 0, burst: k?.burst ?? 0, tier: k?.tier ?? 'normal', exp: Math.floor(Date.now() / 1000) + 86400 };
  const dir = mkdtempSync(join(tmpdir(), 'gw-bench-jwt-'));
  chmodSync(dir, 0o755);
  if (alg === 'HS256') {
    const secret = 'bench-jwt-secret-0123456789-abcdefghijklmnopqrstuvwxyz';
    return { env: { GW_JWT_SECRET: secret }, token: mint('HS256', secret, claims), dir };
  }
  const pair = keyPair('RS256', 'bench-rs256');
  const file = join(dir, 'jwks.json');
  writeFileSync(file, JSON.stringify({ keys: [publicJwk(pair)] }));
  return { env: { GW_JWKS_FILE: file }, token: mint('RS256', pair, claims), dir };
}

/**
 * The mock backends of scenarios.ts (BACKENDS), each serving the MODELS routed to it: `names`, or
 * every backend but the ON_DEMAND ones.
 */
export function startBenchMocks(names: string[] = Object.keys(BACKENDS).filter((n) => ON_DEMAND.indexOf(n) < 0)): Promise<MockFleet> {
  const modelsOf = (up: string) => Object.entries(MODELS).filter(([, m]) => m.upstream === up).map(([n]) => n);
  for (const n of names) if (!BACKENDS[n]) throw new Error(`startBenchMocks: no backend ${n} in bench/scenarios.ts BACKENDS`);
  return startMockFleet(names.map((name) => ({ ...BACKENDS[name], name, models: modelsOf(name) })));
}

/** `extraBackends`: ON_DEMAND backends the run's cells use, started beside the usual ones. */
export async function startTargets(rt: NginxRuntime, opts: { workers: number; extraBackends?: string[] }): Promise<Targets> {
  const cleanups: (() => Promise<void>)[] = [];
  const undo = async () => { for (const c of cleanups.reverse()) await c().catch(() => undefined); };
  try {
    const fleet = await startBenchMocks(Object.keys(BACKENDS).filter((n) => ON_DEMAND.indexOf(n) < 0 || (opts.extraBackends ?? []).indexOf(n) >= 0));
    cleanups.push(() => fleet.stop());

    // Plain nginx: one server{} per backend.
    const plainPorts: Record<string, number> = {};
    for (const up of Object.keys(fleet.ports)) plainPorts[up] = await freePort();
    const plainPrefix = mkdtempSync(join(tmpdir(), 'gw-bench-plain-'));
    chmodSync(plainPrefix, 0o755); // workers run as `nobody` when the master is root
    cleanups.push(async () => rmSync(plainPrefix, { recursive: true, force: true }));
    const first = Object.values(plainPorts)[0];
    const plain = await startNginx(rt, { prefix: plainPrefix, conf: renderPlain(plainPrefix, opts.workers, fleet.ports, plainPorts), host: '127.0.0.1', port: first, env: NGINX_ENV });
    cleanups.push(() => plain.stop());

    // The gateway: the documented config, every feature in GATEWAY_FEATURES on.
    const gw = await startGateway(fleet, { workers: opts.workers, variant: FEATURE_VARIANTS[0] });
    cleanups.push(() => gw.stack.stop());
    const gateway = gw.stack;
    const gwHeaders = gw.headers;

    const t: Targets = {
      fleet, plain, gateway, workers: opts.workers,
      baseUrl(target, upstream) {
        if (target === 'direct') return `http://127.0.0.1:${fleet.ports[upstream]}`;
        if (target === 'plain') return `http://127.0.0.1:${plainPorts[upstream]}`;
        return gateway.url;
      },
      headers: (target) => (target === 'gateway' ? { ...gwHeaders } : {}),
      workerPids(target) {
        if (target === 'plain') return childPids(plain.pid);
        if (target === 'gateway') return childPids(gateway.nginx.pid);
        return [];
      },
      badLogLines: () => [plain.errorLog(), gateway.nginx.errorLog()].join('\n').split('\n').filter((l) => BAD_LOG.test(l)),
      stop: undo,
    };
    return t;
  } catch (e) {
    await undo();
    throw e;
  }
}

/**
 * One request per target and payload before any load: 200, answered by the payload's backend, and
 * the body arrived byte for byte (the mock reports its sha256). A bench that measures a 404 path, or
 * a proxy that mangles bodies, fails here instead of producing fast numbers.
 */
export async function preflight(url: string, path: string, body: string, headers: Record<string, string>, upstream: string): Promise<string | null> {
  // x-mock-hash: a skimming mock (skimBodies) hashes only the bodies it is asked to.
  const res = await fetch(url + path, { method: 'POST', body, headers: { 'content-type': 'application/json', 'x-mock-hash': '1', ...headers } });
  const text = await res.text();
  if (res.status !== 200) return `${url}${path}: status ${res.status}: ${text.slice(0, 200)}`;
  if (res.headers.get('x-mock-backend') !== upstream) return `${url}${path}: answered by ${res.headers.get('x-mock-backend')}, expected ${upstream}`;
  if (res.headers.get('x-body-sha256') !== sha256(body)) return `${url}${path}: the backend received a different body`;
  return null;
}

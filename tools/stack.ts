/**
 * A whole gateway on 127.0.0.1: mock vLLM backends, the routing config rendered from a
 * gateway.json-shaped object, and a real nginx running nginx.conf.example with the built bundle.
 * The integration tests (through useGateway), `npm start` and the benchmarks share it.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderConfigObject } from '../scripts/gen-config.mjs';
import { distDir, NGINX_ENV, nginxDir, renderNginxConf, RenderOptions } from './config';
import { findNginx, NginxRuntime } from './findNginx';
import { MockOptions, MockVllm, startMockVllm } from './mockVllm';
import { Lifetime, newLifetime, NginxHandle, startNginx } from './nginx';
import { makeStateDir } from './stateDir';

export interface BackendSpec extends Omit<MockOptions, 'name' | 'models'> {
  /** Models this backend serves; default: the models routed to its upstream. */
  models?: string[];
}

export interface ModelSpec {
  upstream: string;
  aliases?: string[];
  capabilities?: string[];
  max_inflight?: number;
  max_queue?: number;
  queue_timeout?: string;
}

export interface StackOptions {
  /** Mock backends by upstream name; each becomes one server of that upstream. */
  backends: Record<string, BackendSpec>;
  models: Record<string, ModelSpec>;
  /** Extra upstream settings or servers (e.g. a dead replica), merged over the generated ones. */
  upstreams?: Record<string, { servers?: string[]; extraServers?: string[]; keepalive?: number; max_fails?: number; fail_timeout?: string; api_key_env?: string }>;
  workers?: number;
  port?: number;
  render?: Partial<RenderOptions>;
  /** API keys on (the example's default) or off (default here: most tests are about other things). */
  auth?: boolean;
  /** gateway.json "jwt" section (docs/jwt.md). */
  jwt?: unknown;
  /** Extra environment for nginx (GW_KEYS_FILE, ...). NGINX_ENV, GW_ADMIN_TOKEN and GW_STATE_DIR are set by default. */
  env?: Record<string, string>;
  /** Edits of nginx/ include files for this stack only, e.g. a shorter proxy_read_timeout. */
  includePatches?: Record<string, (text: string) => string>;
  /** The nginx to run (default: findNginx()); the bench's instruction counts pass one under valgrind. */
  rt?: NginxRuntime;
}

export interface Stack {
  url: string;
  port: number;
  adminUrl: string;
  adminToken: string;
  /** GW_STATE_DIR of this stack (writable by the nginx workers). */
  stateDir: string;
  rt: NginxRuntime;
  nginx: NginxHandle;
  mocks: Record<string, MockVllm>;
  prefix: string;
  /** The config text nginx runs now; rerender with changes and reload. */
  render(over?: Partial<RenderOptions>): string;
  /** Stops nginx completely and starts a fresh master on the same config, ports and state dir. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

function anyFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/** Ports this process handed out: the kernel may offer a just-closed port again. */
const handedOut = new Set<number>();

/**
 * A port free now and never handed out before by this process: callers take several before they
 * bind any (gateway, admin API, mocks), and two of them equal is a bind() failure.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const p = await anyFreePort();
    if (!handedOut.has(p)) {
      handedOut.add(p);
      return p;
    }
  }
}

export function requireBundle(): void {
  if (!existsSync(join(distDir, 'gateway.js'))) throw new Error('dist/gateway.js is missing: run `npm run build` first');
}

/**
 * Starts the stack; everything it starts is registered in `life` as soon as it exists, so closing
 * `life` (useGateway's afterAll, also after a timed-out beforeAll) stops even a half-started stack.
 */
export async function startStack(o: StackOptions, life: Lifetime = newLifetime()): Promise<Stack> {
  requireBundle();
  const rt = o.rt ?? findNginx({ quiet: true });
  const mocks: Record<string, MockVllm> = {};
  const cleanups = { push: (fn: () => Promise<void>) => life.add(fn) };
  const gaveUp = () => {
    if (life.closed) throw new Error('startStack: given up by its caller (timed out); what it started is stopped');
  };
  try {
    for (const [up, spec] of Object.entries(o.backends)) {
      const models = spec.models ?? Object.entries(o.models).filter(([, m]) => m.upstream === up).map(([n]) => n);
      const mock = await startMockVllm({ ...spec, name: up, models });
      mocks[up] = mock;
      cleanups.push(() => mock.close());
      gaveUp();
    }
    const upstreams: Record<string, unknown> = {};
    const names = new Set([...Object.keys(o.backends), ...Object.keys(o.upstreams ?? {})]);
    for (const up of names) {
      const extra = o.upstreams?.[up] ?? {};
      const servers = extra.servers ?? [...(mocks[up] ? [`${mocks[up].host}:${mocks[up].port}`] : []), ...(extra.extraServers ?? [])];
      upstreams[up] = { keepalive: extra.keepalive, max_fails: extra.max_fails, fail_timeout: extra.fail_timeout, api_key_env: extra.api_key_env, servers };
    }
    const prefix = mkdtempSync(join(tmpdir(), 'gw-nginx-'));
    cleanups.push(async () => rmSync(prefix, { recursive: true, force: true }));
    // Workers drop root to `nobody`: they must reach files under the prefix and write the state dir.
    chmodSync(prefix, 0o755);
    const stateDir = join(prefix, 'state');
    makeStateDir(stateDir, rt);
    const routesDir = join(prefix, 'routes');
    mkdirSync(routesDir);
    renderConfigObject({ upstreams, models: o.models, jwt: o.jwt }, routesDir, 'test config');
    let includeDir: string | undefined;
    if (o.includePatches) {
      includeDir = join(prefix, 'nginx');
      cpSync(nginxDir, includeDir, { recursive: true });
      for (const [file, edit] of Object.entries(o.includePatches)) {
        const p = join(includeDir, file);
        const before = readFileSync(p, 'utf8');
        const after = edit(before);
        if (after === before) throw new Error(`includePatches: the edit of ${file} changed nothing`);
        writeFileSync(p, after);
      }
    }
    const port = o.port ?? (await freePort());
    const adminPort = await freePort();
    const authMode = (c: string) => (o.auth ? c : c.replace('set $gw_auth_mode on;', 'set $gw_auth_mode off;'));
    const render = (over: Partial<RenderOptions> = {}) => {
      const opts = { prefix, listen: `127.0.0.1:${port}`, adminListen: `127.0.0.1:${adminPort}`, workers: o.workers ?? 2, jsModule: rt.jsModule, routesDir, includeDir, ...o.render, ...over };
      const userPatch = opts.patch;
      return renderNginxConf({ ...opts, patch: (c) => authMode(userPatch ? userPatch(c) : c) });
    };
    const adminToken = `adm-${randomBytes(12).toString('hex')}`;
    const env = { ...NGINX_ENV, GW_ADMIN_TOKEN: adminToken, GW_STATE_DIR: stateDir, ...o.env };
    let nginx = await startNginx(rt, { prefix, conf: render(), host: '127.0.0.1', port, env, life });
    gaveUp();
    const stack: Stack = {
      url: `http://127.0.0.1:${port}`, port, adminUrl: `http://127.0.0.1:${adminPort}`, adminToken: env.GW_ADMIN_TOKEN, stateDir, rt, nginx, mocks, prefix, render,
      async restart() {
        await stack.nginx.stop();
        nginx = await startNginx(rt, { prefix, conf: render(), host: '127.0.0.1', port, env, life });
        stack.nginx = nginx;
      },
      stop() {
        return life.close();
      },
    };
    return stack;
  } catch (e) {
    await life.close();
    throw e;
  }
}

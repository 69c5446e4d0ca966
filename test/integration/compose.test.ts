/**
 * The compose stacks' nginx config on our real nginx, without a Docker engine:
 *   - `nginx -t` passes on the exact config the gateway container runs (plain and TLS), with the
 *     built bundle and routing data, container paths mapped to this checkout;
 *   - the CPU dev stack's config serves the conformance checks (test/support/stackChecks.ts) with
 *     mock vLLM servers started from compose/dev.yml's own command lines.
 * Upstream servers are compose service names (vllm-ocr:8000 resolve), which nginx resolves at start
 * and, on nginx >= 1.27.3, again through the resolver. Where we may (root, util-linux unshare), nginx
 * runs in a private mount namespace whose /etc/hosts maps those names to loopback addresses, so the
 * config is byte for byte the container's; elsewhere the copied routes.conf names those addresses
 * instead (the only difference; the test says which). An nginx older than 1.27.3 (the provisioned
 * 1.26) cannot parse `resolve`: it checks the config without it, and says so; the container's image
 * is checked exactly with GW_NGINX_SUITE=sid or NGINX_BIN pointing at nginx >= 1.27.3.
 * The running dev stack uses routes.conf without `resolve` on every nginx: no DNS server answers
 * at 127.0.0.11 here, and its re-resolution is what the nginx -t check and the unit tests cover.
 *
 * compose.docker.test.ts runs the same checks against the real containers when an engine answers.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { writeComposeSecrets } from '../../scripts/compose-secrets';
import { C, generateNginxFiles, localizeNginxConf, NGINX_MIN_RESOLVE, versionAtLeast, withoutResolve, writeFiles } from '../../scripts/gen-compose';
import { parseMockArgs } from '../../scripts/mock-vllm';
import { projectRoot } from '../../tools/config';
import { findNginx, NginxRuntime } from '../../tools/findNginx';
import { MockVllm, startMockVllm } from '../../tools/mockVllm';
import { BAD_LOG, NginxHandle, startNginx } from '../../tools/nginx';
import { freePort, requireBundle } from '../../tools/stack';
import { stackChecks, StackTarget } from '../support/stackChecks';
import { eventually } from '../support/eventually';
import { makeStateDir } from '../../tools/stateDir';

const work = mkdtempSync(join(tmpdir(), 'gw-compose-'));
chmodSync(work, 0o755); // nginx workers run unprivileged when the tests run as root
const dev = parse(readFileSync(join(projectRoot, 'compose/dev.yml'), 'utf8')) as { services: Record<string, { command?: string[]; healthcheck?: unknown }> };
const mockServices = Object.entries(dev.services).filter(([n]) => n !== 'gateway');
type Addresses = Record<string, string>;
/**
 * A loopback address per compose service (127.a.b.1, .2, ...; a and b random so parallel runs do not
 * meet): each mock keeps its port from dev.yml, as each container does.
 */
function loopbackAddresses(): Addresses {
  const a = 16 + Math.floor(Math.random() * 230);
  const b = Math.floor(Math.random() * 256);
  return Object.fromEntries(mockServices.map(([n], i) => [n, `127.${a}.${b}.${i + 1}`]));
}

/** Can we bind-mount a file over /etc/hosts in a private mount namespace? */
function namespaceWorks(): boolean {
  const a = join(work, 'probe-a');
  const b = join(work, 'probe-b');
  writeFileSync(a, 'a');
  writeFileSync(b, 'b');
  const out = spawnSync('unshare', ['--mount', 'sh', '-c', 'mount --bind "$0" "$1" && cat "$1"', a, b], { encoding: 'utf8' });
  return out.status === 0 && out.stdout === 'a';
}
// GW_COMPOSE_TEST_REWRITE=1 forces the fallback (to test it on a machine that has namespaces).
const useNamespace = process.env.GW_COMPOSE_TEST_REWRITE !== '1' && namespaceWorks();

/** Renders what `npm run compose:gen` puts in dist/compose/ into `dir`, resolvable here. */
function renderInto(dir: string, addr: Addresses, opts: { resolve: boolean }): void {
  const files = generateNginxFiles();
  if (!opts.resolve) files['routes/routes.conf'] = withoutResolve(files['routes/routes.conf']);
  // routes.conf preloads gw-routes.json from the container's routes folder: point it at `dir`.
  files['routes/routes.conf'] = files['routes/routes.conf'].replaceAll(`${C.routes}/`, `${join(dir, 'routes')}/`);
  if (!useNamespace) {
    files['routes/routes.conf'] = files['routes/routes.conf'].replace(/server ([a-z0-9-]+):/g, (m, host: string) => (addr[host] ? `server ${addr[host]}:` : m));
  }
  writeFiles(dir, files);
}

/** An nginx "binary" that runs the real one with /etc/hosts naming the compose services. */
function nginxWithHosts(rt: NginxRuntime, addr: Addresses, name: string): NginxRuntime {
  if (!useNamespace) return rt;
  const hosts = join(work, `hosts-${name}`);
  writeFileSync(hosts, `${readFileSync('/etc/hosts', 'utf8')}\n${Object.entries(addr).map(([n, a]) => `${a} ${n}`).join('\n')}\n`);
  const wrapper = join(work, `nginx-ns-${name}`);
  writeFileSync(wrapper, `#!/bin/sh\nexec unshare --mount sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' '${hosts}' '${rt.bin}' "$@"\n`);
  chmodSync(wrapper, 0o755);
  return { ...rt, bin: wrapper };
}

function nginxTest(rt: NginxRuntime, confText: string, name: string): { ok: boolean; output: string } {
  const prefix = join(work, name);
  mkdirSync(join(prefix, 'logs'), { recursive: true });
  mkdirSync(join(prefix, 'tmp'), { recursive: true });
  writeFileSync(join(prefix, 'nginx.conf'), confText);
  const out = spawnSync(rt.bin, ['-t', '-p', prefix, '-c', join(prefix, 'nginx.conf'), '-e', join(prefix, 'logs/error.log')], { encoding: 'utf8' });
  return { ok: out.status === 0, output: `${out.stdout}${out.stderr}` };
}

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe(`compose gateway config on real nginx (${useNamespace ? 'exact config, service names via a private /etc/hosts' : 'routes.conf names loopback addresses: no mount namespace here'})`, () => {
  let rt: NginxRuntime;
  let resolveOk = false;
  const built = join(work, 'dist-compose');
  const secrets = join(work, 'secrets');

  beforeAll(() => {
    requireBundle();
    const addr = loopbackAddresses();
    const found = findNginx({ quiet: true });
    rt = nginxWithHosts(found, addr, 'check');
    resolveOk = versionAtLeast(found.version, NGINX_MIN_RESOLVE);
    if (!resolveOk) {
      console.info(`compose.test.ts: nginx ${found.version} < ${NGINX_MIN_RESOLVE} cannot parse \`server ... resolve\`: nginx -t checks routes.conf without it (run with GW_NGINX_SUITE=sid or NGINX_BIN=<nginx >= ${NGINX_MIN_RESOLVE}> for the exact config)`);
    }
    renderInto(built, addr, { resolve: resolveOk });
    writeComposeSecrets(secrets, { tls: true });
    // compose/tls.yml mounts tls.crt/tls.key as the secrets gw_tls_cert/gw_tls_key.
    copyFileSync(join(secrets, 'tls.crt'), join(secrets, 'gw_tls_cert'));
    copyFileSync(join(secrets, 'tls.key'), join(secrets, 'gw_tls_key'));
  });

  it.each([['nginx.conf', false], ['nginx-tls.conf', true]] as const)('nginx -t accepts dist/compose/%s with the built bundle', (file, tls) => {
    const text = readFileSync(join(built, file), 'utf8');
    expect(text).toContain(`include ${C.includes}/gateway-server.conf;`);
    const local = localizeNginxConf(text, { prefix: join(work, `t-${file}`), jsModule: rt.jsModule, routesDir: join(built, 'routes'), secretsDir: tls ? secrets : undefined });
    expect(local).not.toMatch(/\/etc\/nginx\/gw\/|\/run\/gw\//);
    const r = nginxTest(rt, local, `t-${file}`);
    expect(r.output).toContain('syntax is ok');
    expect(r.ok, r.output).toBe(true);
    const routes = readFileSync(join(built, 'routes/routes.conf'), 'utf8');
    expect(routes).toMatch(/^\s*zone upstream_be_ocr \d+k;$/m);
    expect((routes.match(/ resolve;$/gm) ?? []).length, `resolve kept: nginx ${rt.version}`).toBe(resolveOk ? mockServices.length : 0);
  });

  it.runIf(versionAtLeast(findNginx({ quiet: true }).version, NGINX_MIN_RESOLVE))('nginx -t accepts a backend name that does not resolve yet (resolve: the gateway starts before its backends)', () => {
    const text = readFileSync(join(built, 'nginx.conf'), 'utf8');
    const routes = join(work, 'late-routes');
    mkdirSync(routes, { recursive: true });
    copyFileSync(join(built, 'routes/gw-routes.js'), join(routes, 'gw-routes.js'));
    writeFileSync(join(routes, 'routes.conf'), 'upstream be_ocr { zone upstream_be_ocr 64k; server no-such-service.invalid:8000 resolve; }\n');
    const local = localizeNginxConf(text, { prefix: join(work, 't-late'), jsModule: rt.jsModule, routesDir: routes });
    const r = nginxTest(rt, local, 't-late');
    expect(r.ok, r.output).toBe(true);
  });

  it('nginx -t fails when a service name does not resolve (the check can fail)', () => {
    const text = readFileSync(join(built, 'nginx.conf'), 'utf8');
    const routes = join(work, 'bad-routes');
    mkdirSync(routes, { recursive: true });
    copyFileSync(join(built, 'routes/gw-routes.js'), join(routes, 'gw-routes.js'));
    writeFileSync(join(routes, 'routes.conf'), 'upstream be_ocr { server no-such-service.invalid:8000; }\n');
    const local = localizeNginxConf(text, { prefix: join(work, 't-bad'), jsModule: rt.jsModule, routesDir: routes });
    const r = nginxTest(rt, local, 't-bad');
    expect(r.ok).toBe(false);
    expect(r.output).toMatch(/host not found in upstream "no-such-service\.invalid:8000"/);
  });
});

/**
 * Starts the compose stack's mock services on a fresh set of loopback addresses, trying another set
 * when an address is taken; `more` starts further servers on the same addresses.
 */
async function startComposeMocks(mocks: MockVllm[], more?: (addr: Addresses) => Promise<void>): Promise<Addresses> {
  for (let attempt = 0; ; attempt++) {
    const addr = loopbackAddresses();
    try {
      for (const [name, s] of mockServices) mocks.push(await startMockVllm({ ...parseMockArgs(s.command ?? []), host: addr[name] }));
      if (more) await more(addr);
      return addr;
    } catch (e) {
      await Promise.all(mocks.splice(0).map((m) => m.close()));
      if (attempt >= 4) throw e;
    }
  }
}

/** As the container's entrypoint does: a worker-readable copy of the admin token in the run folder. */
function copyAdminToken(run: string, secrets: string): void {
  mkdirSync(join(run, 'secrets'), { recursive: true });
  copyFileSync(join(secrets, 'gw_admin_token'), join(run, 'secrets/gw_admin_token'));
  chmodSync(join(run, 'secrets/gw_admin_token'), 0o644);
}

describe('the CPU dev stack\'s config serves the conformance checks on real nginx', () => {
  const built = join(work, 'dev-dist-compose');
  const secrets = join(work, 'dev-secrets');
  const mocks: MockVllm[] = [];
  let nginx: NginxHandle | undefined;
  const target = {} as StackTarget;

  beforeAll(async () => {
    requireBundle();
    const addr = await startComposeMocks(mocks);
    const rt = nginxWithHosts(findNginx({ quiet: true }), addr, 'dev');
    renderInto(built, addr, { resolve: false });
    writeComposeSecrets(secrets);
    const run = join(work, 'dev-run');
    copyAdminToken(run, secrets);
    makeStateDir(join(run, 'state'), rt);
    const port = await freePort();
    const adminPort = await freePort();
    const conf = localizeNginxConf(readFileSync(join(built, 'nginx.conf'), 'utf8'), {
      prefix: run, jsModule: rt.jsModule, routesDir: join(built, 'routes'),
      listen: `127.0.0.1:${port}`, adminListen: `127.0.0.1:${adminPort}`,
    });
    nginx = await startNginx(rt, {
      prefix: run, conf, host: '127.0.0.1', port,
      env: { GW_ADMIN_TOKEN_FILE: join(run, 'secrets/gw_admin_token'), GW_KEYS_FILE: join(secrets, 'gw_keys.json'), GW_STATE_DIR: join(run, 'state') },
    });
    Object.assign(target, {
      url: `http://127.0.0.1:${port}`,
      apiKey: readFileSync(join(secrets, 'dev_api_key'), 'utf8').trim(),
      adminUrl: `http://127.0.0.1:${adminPort}`,
      adminToken: readFileSync(join(secrets, 'gw_admin_token'), 'utf8').trim(),
    });
  });

  afterAll(async () => {
    await nginx?.stop();
    await Promise.all(mocks.map((m) => m.close()));
  });

  for (const c of stackChecks) it.skipIf(c.needsServiceDns)(c.name, () => c.run(target));

  it('passes the gateway service\'s own healthcheck command from dev.yml', () => {
    const test = (dev.services.gateway as { healthcheck: { test: string[] } }).healthcheck.test;
    expect(test[0]).toBe('CMD');
    const args = test.slice(1).map((a) => a.replace(`http://127.0.0.1:${C.port}/`, `${target.url}/`));
    expect(args.join(' ')).toContain(target.url);
    const out = spawnSync(args[0], args.slice(1), { encoding: 'utf8' });
    expect(out.status, out.stderr).toBe(0);
  });

  it('gpu-smoke refuses the dev stack: its OCR backend is the mock, not a GPU model server (exit 2)', async () => {
    const out = await new Promise<{ code: number | null; err: string }>((resolve) => {
      const p = spawn(process.execPath, ['--import', 'tsx', join(projectRoot, 'scripts/gpu-smoke.ts'), '--url', target.url, '--key', target.apiKey]);
      let err = '';
      p.stderr.on('data', (d) => { err += d; });
      p.on('close', (code) => resolve({ code, err }));
    });
    expect(out.code, out.err).toBe(2);
    expect(out.err).toMatch(/refused: the OCR backend .* is the CPU dev stack's mock \(x-mock-backend: be_ocr\)/);
  });

  it('leaves the error log clean', () => {
    const bad = (nginx?.errorLog() ?? '').split('\n').filter((l) => BAD_LOG.test(l));
    expect(bad).toEqual([]);
  });
});

/**
 * A DNS server for the test: answers A queries from `table` (TTL 1 s), NXDOMAIN otherwise, the way
 * Docker's embedded DNS at 127.0.0.11 answers service names.
 */
async function startDns(table: Record<string, string>): Promise<{ port: number; queries: string[]; close(): void }> {
  const sock = createSocket('udp4');
  const queries: string[] = [];
  sock.on('message', (msg, rinfo) => {
    let off = 12;
    const labels: string[] = [];
    while (off < msg.length && msg[off] !== 0) {
      labels.push(msg.toString('ascii', off + 1, off + 1 + msg[off]));
      off += msg[off] + 1;
    }
    const qEnd = off + 5;
    const name = labels.join('.').toLowerCase();
    const qtype = msg.readUInt16BE(off + 1);
    queries.push(name);
    const ip = qtype === 1 ? table[name] : undefined;
    const head = Buffer.alloc(12);
    msg.copy(head, 0, 0, 2);
    head.writeUInt16BE(0x8180 | (ip || qtype !== 1 ? 0 : 3), 2); // response, RD+RA; NXDOMAIN for unknown names
    head.writeUInt16BE(1, 4);
    head.writeUInt16BE(ip ? 1 : 0, 6);
    const parts = [head, msg.subarray(12, qEnd)];
    if (ip) {
      const ans = Buffer.alloc(16);
      ans.writeUInt16BE(0xc00c, 0);
      ans.writeUInt16BE(1, 2);
      ans.writeUInt16BE(1, 4);
      ans.writeUInt32BE(1, 6);
      ans.writeUInt16BE(4, 10);
      ip.split('.').forEach((o, i) => { ans[12 + i] = Number(o); });
      parts.push(ans);
    }
    sock.send(Buffer.concat(parts), rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  return { port: sock.address().port, queries, close: () => sock.close() };
}

const resolveRt = findNginx({ quiet: true });
const canResolve = versionAtLeast(resolveRt.version, NGINX_MIN_RESOLVE);
if (!canResolve) console.info(`compose.test.ts: the re-resolution check needs nginx >= ${NGINX_MIN_RESOLVE} (this is ${resolveRt.version}): skipped`);

describe.runIf(canResolve)('the compose gateway config follows a model server to a new address (resolve, through a DNS server)', () => {
  const built = join(work, 'dns-dist-compose');
  const secrets = join(work, 'dns-secrets');
  const mocks: MockVllm[] = [];
  let moved: MockVllm;
  let nginx: NginxHandle | undefined;
  let dns: Awaited<ReturnType<typeof startDns>>;
  const table: Record<string, string> = {};
  const target = {} as StackTarget;

  beforeAll(async () => {
    requireBundle();
    const addr = await startComposeMocks(mocks, async (a) => {
      const ocr = parseMockArgs(mockServices.find(([n]) => n === 'vllm-ocr')![1].command ?? []);
      moved = await startMockVllm({ ...ocr, host: a['vllm-ocr'].replace(/\.\d+$/, '.200') });
    });
    Object.assign(table, addr);
    dns = await startDns(table);
    renderInto(built, addr, { resolve: true });
    writeComposeSecrets(secrets);
    const run = join(work, 'dns-run');
    copyAdminToken(run, secrets);
    mkdirSync(join(run, 'state'), { recursive: true });
    chmodSync(join(run, 'state'), 0o777);
    const port = await freePort();
    const conf = localizeNginxConf(readFileSync(join(built, 'nginx.conf'), 'utf8'), {
      prefix: run, jsModule: resolveRt.jsModule, routesDir: join(built, 'routes'),
      listen: `127.0.0.1:${port}`, adminListen: `127.0.0.1:${await freePort()}`,
    });
    // The container's resolver is Docker's DNS; here, ours (valid=1s: the test need not wait 10 s).
    expect(conf).toMatch(/resolver 127\.0\.0\.11 valid=10s ipv6=off;/);
    const local = conf.replace(/resolver 127\.0\.0\.11 valid=10s/, `resolver 127.0.0.1:${dns.port} valid=1s`);
    nginx = await startNginx(resolveRt, {
      prefix: run, conf: local, host: '127.0.0.1', port,
      env: { GW_ADMIN_TOKEN_FILE: join(run, 'secrets/gw_admin_token'), GW_KEYS_FILE: join(secrets, 'gw_keys.json'), GW_STATE_DIR: join(run, 'state') },
    });
    Object.assign(target, { url: `http://127.0.0.1:${port}`, apiKey: readFileSync(join(secrets, 'dev_api_key'), 'utf8').trim() });
  });

  afterAll(async () => {
    await nginx?.stop();
    await Promise.all([...mocks, moved].filter(Boolean).map((m) => m.close()));
    dns?.close();
  });

  /** POSTs to the OCR model until it answers 200 and `done` holds (nginx re-resolves every second). */
  async function ocrUntil(done: () => boolean = () => true): Promise<void> {
    await eventually(async () => {
      const res = await fetch(`${target.url}/v1/chat/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${target.apiKey}` },
        body: JSON.stringify({ model: 'ocr', messages: [{ role: 'user', content: 'hi' }] }),
      });
      await res.text();
      expect(res.status).toBe(200);
      expect(done()).toBe(true);
    }, { everyMs: 250 });
  }

  it('reaches the OCR server by its name through the resolver, then at its new address after a "restart"', async () => {
    const first = mocks.find((m) => m.host === table['vllm-ocr'])!;
    await ocrUntil();
    expect(first.stats.byPath['/v1/chat/completions']).toBeGreaterThan(0);
    expect(dns.queries).toContain('vllm-ocr');
    // Docker recreates the container: the old address is gone, the name points at a new one.
    await first.close();
    mocks.splice(mocks.indexOf(first), 1);
    table['vllm-ocr'] = moved.host;
    await ocrUntil(() => (moved.stats.byPath['/v1/chat/completions'] ?? 0) > 0);
    expect(moved.stats.byPath['/v1/chat/completions']).toBeGreaterThan(0);
  });

  it('lets the health probes and /v1/models reach the same names through the same resolver', async () => {
    const check = stackChecks.find((c) => c.needsServiceDns);
    expect(check).toBeDefined();
    await check!.run(target);
  });

  it('leaves the error log free of crashes', () => {
    const bad = (nginx?.errorLog() ?? '').split('\n').filter((l) => /\[(alert|emerg)\]|signal \d+|worker process \d+ exited/.test(l));
    expect(bad).toEqual([]);
  });
});

/**
 * The compose stacks without a Docker engine: every compose file is valid against the compose
 * specification's JSON schema, the generated files are not stale, and the stacks keep their
 * security properties (model servers only on the internal network and never published, the gateway
 * on both networks, the downloader alone in the setup profile and alone with internet, offline env
 * on model servers, healthchecks) and agree with compose/gateway.json (served names, caps, context).
 */
import { Ajv } from 'ajv';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  C, GATEWAY_ENV, generateCompose, generateNginxFiles, IMAGES, isExactImage, loadPlan, NGINX_MIN_RESOLVE, OFFLINE_ENV, PINS,
  planCompose, staleFiles, versionAtLeast, VLLM_CACHE, VLLM_KEEP_ALIVE_S, withoutResolve,
} from '../../scripts/gen-compose';
import { parseMockArgs } from '../../scripts/mock-vllm';
import { NGINX_ENV, projectRoot } from '../../tools/config';

type Service = Record<string, any>;
type ComposeFile = { name?: string; services: Record<string, Service>; networks?: Record<string, any>; volumes?: Record<string, any>; secrets?: Record<string, any> };

const require = createRequire(import.meta.url);
// The compose specification's schema (compose-spec/compose-spec schema/compose-spec.json), as
// vendored by the dclint package; the same Ajv options dclint validates with.
// Its "$schema" names draft-07 by an id Ajv does not list; the draft-07 meta-schema is Ajv's default.
const schema = JSON.parse(readFileSync(require.resolve('dclint/package.json').replace(/package\.json$/, 'schemas/compose.schema.json'), 'utf8'));
expect(schema.$schema).toMatch(/draft-07/);
delete schema.$schema;
const ajv = new Ajv({ allErrors: true, strict: false, allowUnionTypes: true, logger: false });
const validate = ajv.compile(schema);

const FILES = ['compose/gpu.yml', 'compose/dev.yml', 'compose/tls.yml'];
const load = (p: string): ComposeFile => parse(readFileSync(join(projectRoot, p), 'utf8'));
const gpu = load('compose/gpu.yml');
const dev = load('compose/dev.yml');
const source = JSON.parse(readFileSync(join(projectRoot, 'compose/gateway.json'), 'utf8'));

function networksOf(s: Service): string[] {
  if (!s.networks) return ['default'];
  return Array.isArray(s.networks) ? s.networks : Object.keys(s.networks);
}

function envOf(s: Service): Record<string, string> {
  if (!s.environment) return {};
  if (!Array.isArray(s.environment)) return s.environment;
  return Object.fromEntries(s.environment.map((e: string) => e.split(/=(.*)/s).slice(0, 2)));
}

/** The value after `flag` in an argument list. */
function arg(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
}

function modelServers(f: ComposeFile): [string, Service][] {
  return Object.entries(f.services).filter(([n, s]) => n !== 'gateway' && !(s.profiles ?? []).includes('setup'));
}

describe('compose files', () => {
  it.each(FILES)('%s is valid against the compose specification schema', (p) => {
    const ok = validate(load(p));
    expect(validate.errors ?? [], `${p}: ${ajv.errorsText(validate.errors)}`).toEqual([]);
    expect(ok).toBe(true);
  });

  it('the schema check can fail (an unknown key and a bad depends_on condition are rejected)', () => {
    const bad = structuredClone(dev);
    bad.services.gateway.depends_on['vllm-ocr'].condition = 'whenever';
    (bad.services.gateway as Service).porst = ['8080:8080'];
    expect(validate(bad)).toBe(false);
    expect(ajv.errorsText(validate.errors)).toMatch(/additional properties|must be equal to one of the allowed values/);
  });

  it('every committed compose file is up to date with compose/gateway.json', () => {
    expect(staleFiles(), 'stale generated files: run `npm run compose:gen` and commit the result').toEqual([]);
  });
});

describe.each([['gpu', gpu], ['dev', dev]] as const)('%s stack security properties', (_kind, f) => {
  const servers = modelServers(f);

  it('has the gateway and one model server per upstream server of compose/gateway.json', () => {
    const expected = Object.values(source.upstreams as Record<string, { servers: string[] }>).flatMap((u) => u.servers.map((s) => s.split(':')[0]));
    expect(servers.map(([n]) => n).sort()).toEqual(expected.sort());
    expect(f.services.gateway).toBeDefined();
  });

  it('puts model servers only on the internal network, with no published ports', () => {
    expect(f.networks?.models?.internal).toBe(true);
    for (const [name, s] of servers) {
      expect(networksOf(s), name).toEqual(['models']);
      expect(s.ports, `${name} must not publish ports`).toBeUndefined();
      expect(s.network_mode, name).toBeUndefined();
      expect(s.privileged, name).toBeUndefined();
    }
  });

  it('puts the gateway on both the internal and a non-internal network, publishing only its own port', () => {
    const g = f.services.gateway;
    expect(networksOf(g).sort()).toEqual(['edge', 'models']);
    expect(f.networks?.edge?.internal).not.toBe(true);
    expect(g.ports).toEqual([`\${GW_BIND:-127.0.0.1}:\${GW_PORT:-8080}:${C.port}`]);
  });

  it('runs model servers offline and without telemetry', () => {
    for (const [name, s] of servers) expect(envOf(s), name).toMatchObject(OFFLINE_ENV);
    expect(OFFLINE_ENV).toMatchObject({ HF_HUB_OFFLINE: '1', VLLM_NO_USAGE_STATS: '1', DO_NOT_TRACK: '1' });
  });

  it('has a healthcheck on every long-running service and starts the gateway after healthy model servers', () => {
    for (const [name, s] of Object.entries(f.services)) {
      if ((s.profiles ?? []).includes('setup')) continue;
      expect(s.healthcheck?.test?.[0], `${name} needs a healthcheck`).toMatch(/^CMD/);
      expect(s.healthcheck?.disable, name).not.toBe(true);
    }
    const deps = f.services.gateway.depends_on;
    for (const [name] of servers) expect(deps[name], `gateway depends_on ${name}`).toEqual({ condition: 'service_healthy', restart: true });
  });

  it('mounts the build and includes read-only, takes secrets from files, bakes nothing in', () => {
    const g = f.services.gateway;
    expect(g.image).toMatch(/nginx:/);
    expect(g.read_only).toBe(true);
    for (const v of g.volumes as string[]) {
      if (/^\.\.?\//.test(v)) expect(v, 'bind mounts are read-only').toMatch(/:ro$/);
    }
    expect(g.volumes).toEqual([`../dist:${C.dist}:ro`, `../nginx:${C.includes}:ro`, `./gateway-entrypoint.sh:${C.entrypoint}:ro`, `gw-state:${C.state}`]);
    expect(g.entrypoint).toEqual(['/bin/sh', C.entrypoint]);
    expect(g.command).toEqual([C.conf]);
    expect(g.tmpfs).toEqual([C.prefix]);
    expect(envOf(g)).toEqual({ ...NGINX_ENV, ...GATEWAY_ENV });
    expect(g.secrets).toEqual(['gw_admin_token', 'gw_keys']);
    expect(Object.keys(f.secrets ?? {}).sort()).toEqual(['gw_admin_token', 'gw_keys']);
    for (const s of Object.values(f.secrets ?? {})) expect(s.file).toMatch(/^\$\{GW_SECRETS_DIR:-\.\/secrets\}\//);
    for (const [name, s] of Object.entries(f.services)) {
      expect(JSON.stringify(envOf(s)), `${name}: no inline tokens`).not.toMatch(/GW_ADMIN_TOKEN"|sk-gw-/);
    }
  });
});

describe('gpu stack', () => {
  const servers = modelServers(gpu);
  const plan = loadPlan();

  it('has the downloader only in the setup profile, alone on the network with internet access', () => {
    const d = gpu.services['model-downloader'];
    expect(d.profiles).toEqual(['setup']);
    expect(networksOf(d)).toEqual(['egress']);
    expect(gpu.networks?.egress?.internal).not.toBe(true);
    const withProfiles = Object.entries(gpu.services).filter(([, s]) => s.profiles);
    expect(withProfiles.map(([n]) => n)).toEqual(['model-downloader']);
    for (const [name, s] of Object.entries(gpu.services)) {
      if (name !== 'model-downloader') expect(networksOf(s), name).not.toContain('egress');
    }
    expect(d.restart).toBe('no');
    // Model servers read the weights read-only; only the downloader writes them.
    for (const [name, s] of servers) expect(s.volumes, name).toEqual(['models:/models:ro', `vllm-cache:${VLLM_CACHE}`]);
    expect(d.volumes).toEqual(['models:/models']);
  });

  it('downloads every model the servers load', () => {
    const list = JSON.parse(gpu.services['model-downloader'].command[0]) as { repo: string; dir: string }[];
    for (const [name, s] of servers) {
      expect(list.map((m) => m.dir), name).toContain(s.command[0]);
    }
    expect(list.map((m) => m.repo).sort()).toEqual(Object.values(source.models as Record<string, { vllm: { hf_repo: string } }>).map((m) => m.vllm.hf_repo).sort());
  });

  it('reserves a GPU for each model server', () => {
    for (const [name, s] of servers) {
      const dev0 = s.deploy?.resources?.reservations?.devices?.[0];
      expect(dev0, name).toMatchObject({ driver: 'nvidia', capabilities: ['gpu'] });
      expect(dev0.device_ids.length, name).toBeGreaterThan(0);
    }
  });

  it('serves each model under its gateway name with caps and context length from compose/gateway.json', () => {
    for (const [name, s] of servers) {
      const args = s.command as string[];
      const model = arg(args, '--served-model-name')!;
      const m = source.models[model];
      expect(m, `${name} serves a model of compose/gateway.json`).toBeDefined();
      const upstream = source.upstreams[m.upstream];
      expect(upstream.servers.map((x: string) => x.split(' ')[0]), name).toContain(`${name}:${arg(args, '--port')}`);
      expect(Number(arg(args, '--max-num-seqs')), `${name} --max-num-seqs`).toBe(Math.ceil(m.max_inflight / upstream.servers.length));
      expect(Number(arg(args, '--max-model-len')), `${name} --max-model-len`).toBe(m.vllm.max_model_len);
      expect(Number(arg(args, '--gpu-memory-utilization')), name).toBe(m.vllm.gpu_memory_utilization);
      expect(args[0]).toBe(`/models/${m.vllm.hf_repo}`);
    }
  });

  it('routes.conf points each upstream at the compose services', () => {
    const conf = generateNginxFiles(plan)['routes/routes.conf'];
    for (const [name, s] of servers) expect(conf).toContain(`server ${name}:${arg(s.command, '--port')} `);
    expect(plan.servers.length).toBe(servers.length);
  });
});

describe('dev stack', () => {
  it('runs the mock from the repository with the same names, caps and context length as the GPU stack', () => {
    for (const [name, s] of modelServers(dev)) {
      expect(s.build).toMatchObject({ context: '..', dockerfile: 'compose/mock-vllm.Dockerfile' });
      const g = gpu.services[name];
      const o = parseMockArgs(s.command);
      expect(o.models).toEqual([arg(g.command, '--served-model-name')]);
      expect(o.port).toBe(Number(arg(g.command, '--port')));
      expect(o.maxConcurrency).toBe(Number(arg(g.command, '--max-num-seqs')));
      expect(o.maxModelLen).toBe(Number(arg(g.command, '--max-model-len')));
      expect(o.host).toBe('0.0.0.0');
    }
  });

  it('uses the same gateway service as the GPU stack', () => {
    expect(dev.services.gateway).toEqual(gpu.services.gateway);
  });
});

describe('tls override', () => {
  it('swaps in the TLS config and adds the certificate as secrets', () => {
    const t = load('compose/tls.yml');
    expect(t.services.gateway.command).toEqual([C.confTls]);
    expect(t.services.gateway.secrets).toEqual(['gw_tls_cert', 'gw_tls_key']);
    expect(t.services.gateway.healthcheck.test.join(' ')).toContain(`https://127.0.0.1:${C.port}/`);
    const conf = generateNginxFiles()['nginx-tls.conf'];
    expect(conf).toMatch(new RegExp(`listen ${C.port} ssl;`));
    expect(conf).toContain('ssl_certificate /run/secrets/gw_tls_cert;');
  });
});

describe('container nginx.conf', () => {
  const conf = generateNginxFiles()['nginx.conf'];
  it('declares the API-key environment so njs can read it, and keeps the admin API on loopback', () => {
    for (const k of Object.keys(GATEWAY_ENV)) expect(conf).toMatch(new RegExp(`^env ${k};$`, 'm'));
    expect(conf).toContain(`listen ${C.adminListen};`);
    expect(conf).toMatch(/^load_module modules\/ngx_http_js_module\.so;$/m);
    expect(conf).not.toMatch(/__[A-Z_]+__/);
    expect(conf).not.toContain(projectRoot);
    expect(conf).toContain(`js_path ${C.routes}/;`);
    expect(conf).toContain(`include ${C.includes}/gateway-http.conf;`);
    expect(conf).toMatch(/^worker_processes auto;$/m);
  });
});

describe('gen-compose planning', () => {
  const base = () => structuredClone(source);

  it('gives each replica its share of the model cap as --max-num-seqs and starts GPU neighbours one by one', () => {
    const raw = base();
    raw.upstreams.be_ocr.servers.push('vllm-ocr-2:8000');
    raw.models['nanonets/Nanonets-OCR2-3B'].vllm.replica_device_ids = { 'vllm-ocr-2': ['1'] };
    const plan = planCompose(raw);
    const ocr = plan.servers.filter((s) => s.upstream === 'be_ocr');
    expect(ocr.map((s) => [s.service, s.maxNumSeqs, s.deviceIds])).toEqual([['vllm-ocr', 4, ['0']], ['vllm-ocr-2', 4, ['1']]]);
    expect(plan.servers.find((s) => s.service === 'vllm-chat')?.after).toBe('vllm-ocr');
    expect(ocr[1].after).toBeUndefined();
    const g = parse(generateCompose(plan)['compose/gpu.yml']) as ComposeFile;
    expect(g.services['vllm-ocr-2'].networks).toEqual(['models']);
    expect(g.services.gateway.depends_on['vllm-ocr-2']).toEqual({ condition: 'service_healthy', restart: true });
    expect(generateNginxFiles(plan)['routes/routes.conf']).toContain('server vllm-ocr-2:8000 ');
    expect(validate(g)).toBe(true);
  });

  it('splits a replica over several GPUs with tensor parallelism and counts its share on each', () => {
    const raw = base();
    raw.models['Qwen/Qwen2.5-1.5B-Instruct'].vllm.device_ids = ['0', '1'];
    const g = parse(generateCompose(planCompose(raw))['compose/gpu.yml']) as ComposeFile;
    expect(arg(g.services['vllm-chat'].command, '--tensor-parallel-size')).toBe('2');
    expect(g.services['vllm-chat'].deploy.resources.reservations.devices[0].device_ids).toEqual(['0', '1']);
    raw.models['BAAI/bge-m3'].vllm.device_ids = ['1'];
    raw.models['BAAI/bge-m3'].vllm.gpu_memory_utilization = 0.75;
    expect(() => planCompose(raw)).toThrow(/GPU 1: .*0\.97 of its memory.*at most 0\.9/);
  });

  it.each([
    ['a model without a vllm object', (r: any) => { delete r.models['BAAI/bge-m3'].vllm; }, /needs a "vllm" object/],
    ['two models on one upstream', (r: any) => { r.models['BAAI/bge-m3'].upstream = 'be_chat'; }, /serves one model/],
    ['no concurrency cap', (r: any) => { r.models['BAAI/bge-m3'].max_inflight = 0; }, /max_inflight/],
    ['a GPU asked for more than its memory', (r: any) => { r.models['BAAI/bge-m3'].vllm.gpu_memory_utilization = 0.3; }, /GPU 0: .* of its memory/],
    ['a server that is not a service name', (r: any) => { r.upstreams.be_ocr.servers = ['10.0.0.5:8000']; }, /compose DNS name|must be "<service>:<port>"/],
    ['a shell variable in extra args', (r: any) => { r.models['BAAI/bge-m3'].vllm.args = ['--x', '$HOME']; }, /without "\$"/],
    ['an unknown replica in replica_device_ids', (r: any) => { r.models['BAAI/bge-m3'].vllm.replica_device_ids = { nope: ['1'] }; }, /"nope" is not one of/],
  ])('rejects %s with a message naming the fix', (_name, edit, re) => {
    const raw = base();
    edit(raw);
    expect(() => planCompose(raw)).toThrow(re);
  });
});

/** The image a `${VAR:-default}` reference runs when VAR is unset. */
function defaultImage(ref: string): string {
  const m = /^\$\{[A-Z0-9_]+:-(.+)\}$/.exec(ref);
  return m ? m[1] : ref;
}

describe('operations: pinned images, re-resolving upstreams, keep-alive, bounded inputs', () => {
  const plan = loadPlan();
  const servers = modelServers(gpu);
  const ci = JSON.parse(readFileSync(join(projectRoot, 'test/support/ci-versions.json'), 'utf8')) as { njs: string[] };
  const line = (v: string) => v.split('.').slice(0, 2).join('.');

  it('runs every image by an exact tag (no floating nginx:1.28, latest, stable)', () => {
    for (const f of [gpu, dev]) {
      for (const [name, s] of Object.entries(f.services)) {
        if (s.build) continue;
        expect(isExactImage(defaultImage(s.image)), `${name}: ${s.image}`).toBe(true);
      }
    }
    for (const bad of ['nginx:1.28', 'nginx', 'nginx:latest', 'vllm/vllm-openai:latest', 'nginx:stable', 'nginx:mainline']) {
      expect(isExactImage(bad), bad).toBe(bad === 'nginx:1.28');
    }
    // nginx:1.28 has a version number but names a moving line: the pin is the full x.y.z.
    expect(PINS.nginx.tag).toMatch(/^nginx:\d+\.\d+\.\d+$/);
    expect(defaultImage(IMAGES.nginx)).toBe(PINS.nginx.tag);
    expect(defaultImage(IMAGES.vllm)).toMatch(/^vllm\/vllm-openai:v\d+\.\d+\.\d+$/);
    expect(isExactImage(`nginx@sha256:${'a'.repeat(64)}`)).toBe(true);
  });

  it('pins an nginx image whose njs (docker-nginx NJS_VERSION for that tag) is a line CI runs', () => {
    expect(ci.njs.length).toBeGreaterThan(0);
    expect(PINS.nginx.tag).toBe(`nginx:${PINS.nginx.nginx}`);
    expect(ci.njs.map(line), `nginx image ${PINS.nginx.tag} ships njs ${PINS.nginx.njs}; CI runs ${ci.njs.join(', ')} (test/support/ci-versions.json)`).toContain(line(PINS.nginx.njs));
    // The check can fail: the tag the stacks used before (nginx:1.28 = 1.28.3, njs 0.9.6) is no line CI runs.
    expect(ci.njs.map(line)).not.toContain(line('0.9.6'));
    // And the image can run this config: `server ... resolve` and js_periodic (njs >= 0.8.1).
    expect(versionAtLeast(PINS.nginx.nginx, NGINX_MIN_RESOLVE)).toBe(true);
    expect(versionAtLeast(PINS.nginx.njs, '0.8.1')).toBe(true);
    expect(PINS.nginx.tag).not.toMatch(/alpine-slim/); // no njs module in *-alpine-slim
    expect(versionAtLeast('1.26.3', NGINX_MIN_RESOLVE)).toBe(false);
  });

  it('re-resolves the service names: a zone per upstream, `resolve` on each server, Docker\'s resolver in http{}', () => {
    const files = generateNginxFiles(plan);
    const routes = files['routes/routes.conf'];
    for (const [upstream, u] of Object.entries(plan.cfg.upstreams)) {
      const block = new RegExp(`upstream ${upstream} \\{([^}]*)\\}`).exec(routes)?.[1] ?? '';
      expect(block, upstream).toMatch(new RegExp(`^\\s*zone upstream_${upstream} \\d+k;$`, 'm'));
      for (const srv of u.servers) expect(block).toMatch(new RegExp(`^\\s*server ${srv.split(' ')[0]} [^;]* resolve;$`, 'm'));
    }
    for (const conf of [files['nginx.conf'], files['nginx-tls.conf']]) {
      const http = conf.slice(conf.indexOf('http {'));
      expect(http).toMatch(/^ {4}resolver 127\.0\.0\.11 valid=10s ipv6=off;$/m);
    }
    // The health probes and /v1/models fetches (ngx.fetch, same resolver) use the same names.
    const table = JSON.parse(files['routes/gw-routes.json']);
    for (const s of plan.servers) expect(table.upstreams[s.upstream].servers).toContain(`${s.service}:${s.port}`);
    // The variant for nginx < 1.27.3 drops only `resolve`.
    const old = withoutResolve(routes);
    expect(old).not.toMatch(/ resolve;/);
    expect(old.replace(/\n/g, '')).toBe(routes.replace(/ resolve;/g, ';').replace(/\n/g, ''));
  });

  it('closes idle upstream connections before vLLM does (keepalive_timeout < VLLM_HTTP_TIMEOUT_KEEP_ALIVE)', () => {
    const routes = generateNginxFiles(plan)['routes/routes.conf'];
    const timeouts = [...routes.matchAll(/keepalive_timeout (\d+)s;/g)].map((m) => Number(m[1]));
    expect(timeouts).toHaveLength(Object.keys(plan.cfg.upstreams).length);
    for (const t of timeouts) expect(t).toBeLessThan(VLLM_KEEP_ALIVE_S);
    for (const [name, s] of servers) expect(envOf(s).VLLM_HTTP_TIMEOUT_KEEP_ALIVE, name).toBe(String(VLLM_KEEP_ALIVE_S));
  });

  it('bounds the OCR model\'s inputs: --limit-mm-per-prompt in JSON form (one image, no video), max_pixels', () => {
    const vision = plan.servers.filter((s) => plan.cfg.models[s.model].capabilities.includes('vision'));
    expect(vision.length).toBeGreaterThan(0);
    for (const s of vision) {
      const args = gpu.services[s.service].command as string[];
      expect(JSON.parse(arg(args, '--limit-mm-per-prompt')!)).toEqual({ image: 1, video: 0 });
      expect(JSON.parse(arg(args, '--mm-processor-kwargs')!).max_pixels).toBeGreaterThan(0);
      expect(args.join(' ')).not.toMatch(/image=\d/);
    }
    const raw = structuredClone(source);
    delete raw.models['nanonets/Nanonets-OCR2-3B'].vllm.limit_mm_per_prompt;
    expect(() => planCompose(raw)).toThrow(/vision model needs its inputs bounded/);
    raw.models['nanonets/Nanonets-OCR2-3B'].vllm.args = ['--limit-mm-per-prompt', 'image=1'];
    expect(() => planCompose(raw)).toThrow(/use the limit_mm_per_prompt/);
    const neg = structuredClone(source);
    neg.models['nanonets/Nanonets-OCR2-3B'].vllm.limit_mm_per_prompt = { image: -1 };
    expect(() => planCompose(neg)).toThrow(/whole numbers/);
  });

  it('serves every model at a pinned revision, which the downloader fetches', () => {
    const list = JSON.parse(gpu.services['model-downloader'].command[0]) as { repo: string; revision?: string }[];
    for (const [name, m] of Object.entries(source.models as Record<string, { vllm: { hf_repo: string; revision: string } }>)) {
      expect(m.vllm.revision, name).toMatch(/^[0-9a-f]{40}$/);
      expect(list.find((d) => d.repo === m.vllm.hf_repo)?.revision, name).toBe(m.vllm.revision);
    }
    for (const rev of [undefined, 'main', 'v1.0']) {
      const raw = structuredClone(source);
      raw.models['BAAI/bge-m3'].vllm.revision = rev;
      expect(() => planCompose(raw), String(rev)).toThrow(/revision: the Hugging Face commit/);
    }
  });

  it('gives a tensor-parallel server a 16 GB /dev/shm (not ipc: host), every server a compile cache and ulimits', () => {
    for (const [name, s] of servers) {
      expect(s.shm_size, name).toBe('2gb');
      expect(s.ipc, name).toBeUndefined();
      expect(s.ulimits, name).toEqual({ memlock: { soft: -1, hard: -1 }, stack: 67108864 });
      expect(envOf(s).VLLM_CACHE_ROOT, name).toBe(VLLM_CACHE);
    }
    expect(gpu.volumes).toHaveProperty('vllm-cache');
    const raw = structuredClone(source);
    raw.models['Qwen/Qwen2.5-1.5B-Instruct'].vllm.device_ids = ['0', '1'];
    const g = parse(generateCompose(planCompose(raw))['compose/gpu.yml']) as ComposeFile;
    expect(g.services['vllm-chat'].shm_size).toBe('16gb');
    expect(g.services['vllm-chat'].ipc).toBeUndefined();
    expect(g.services['vllm-ocr'].shm_size).toBe('2gb');
    expect(validate(g)).toBe(true);
  });

  it('makes each server on a shared GPU wait for the one before it in its own entrypoint, not only in depends_on', () => {
    const byGpu: Record<string, string[]> = {};
    for (const s of plan.servers) for (const d of s.deviceIds) (byGpu[d] ??= []).push(s.service);
    for (const list of Object.values(byGpu)) {
      list.forEach((name, i) => {
        const env = envOf(gpu.services[name]);
        if (i === 0) expect(env.GW_WAIT_FOR, name).toBeUndefined();
        else {
          const prev = plan.servers.find((x) => x.service === list[i - 1])!;
          expect(env.GW_WAIT_FOR, name).toBe(`http://${prev.service}:${prev.port}/health`);
          expect(gpu.services[name].depends_on?.[prev.service]).toEqual({ condition: 'service_healthy' });
        }
      });
    }
    for (const [name, s] of servers) expect(s.entrypoint[2], name).toContain('GW_WAIT_FOR');
  });
});

const hasPython = spawnSync('python3', ['-c', 'pass']).status === 0;
if (!hasPython) console.info('compose.test.ts: the model-server entrypoint checks are skipped: no python3 here (the vLLM image has it)');

describe.skipIf(!hasPython)('the model server entrypoint under a real sh (compose turns $$ into $)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gw-entry-'));
  const script = (gpu.services['vllm-chat'].entrypoint[2] as string).replace(/\$\$/g, '$');
  mkdirSync(join(dir, 'bin'));
  mkdirSync(join(dir, 'weights'));
  writeFileSync(join(dir, 'weights/config.json'), '{}');
  // A stand-in `vllm` that shows what it was started with.
  writeFileSync(join(dir, 'bin/vllm'), '#!/bin/sh\necho "vllm $*"\n');
  chmodSync(join(dir, 'bin/vllm'), 0o755);

  function run(env: Record<string, string>, weights = join(dir, 'weights')): Promise<{ code: number | null; out: string; err: string }> {
    return new Promise((resolve) => {
      const p = spawn('sh', ['-c', script, 'vllm-serve', weights, '--port', '8000'], {
        env: { PATH: `${join(dir, 'bin')}:${process.env.PATH}`, ...env },
      });
      let out = '';
      let err = '';
      p.stdout.on('data', (d) => { out += d; });
      p.stderr.on('data', (d) => { err += d; });
      p.on('close', (code) => resolve({ code, out, err }));
    });
  }

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses to start without weights, naming the downloader', async () => {
    const r = await run({}, join(dir, 'nothing'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/no weights at .*run the model-downloader first/);
    expect(r.out).toBe('');
  });

  it('starts vllm serve at once when it waits for nobody, and after the predecessor answers /health', async () => {
    expect((await run({})).out).toBe(`vllm serve ${join(dir, 'weights')} --port 8000\n`);
    const hits: string[] = [];
    const srv = createServer((req, res) => { hits.push(req.url ?? ''); res.end('{}'); });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/health`;
      const r = await run({ GW_WAIT_FOR: url });
      expect(r.code).toBe(0);
      expect(hits).toEqual(['/health']);
      expect(r.out).toBe(`vllm serve ${join(dir, 'weights')} --port 8000\n`);
    } finally {
      srv.close();
    }
  });

  it('does not start vllm while the predecessor is unhealthy, and gives up after GW_WAIT_MAX for the restart policy', async () => {
    const srv = createServer((_req, res) => { res.statusCode = 503; res.end(); });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/health`;
      const r = await run({ GW_WAIT_FOR: url, GW_WAIT_MAX: '5' });
      expect(r.code).toBe(1);
      expect(r.out).toBe('');
      expect(r.err).toContain(`${url} is not healthy after 5 s`);
    } finally {
      srv.close();
    }
  });
});

describe('gen-compose --no-resolve (an nginx image older than 1.27.3)', () => {
  it('renders the same routes without `resolve`, keeping the zones', () => {
    const a = generateNginxFiles(loadPlan())['routes/routes.conf'];
    const b = generateNginxFiles(loadPlan(), { resolve: false })['routes/routes.conf'];
    expect(a).toMatch(/ resolve;$/m);
    expect(b).not.toMatch(/resolve/);
    expect(b).toMatch(/zone upstream_be_ocr/);
    expect(b).toBe(withoutResolve(a));
  });
});

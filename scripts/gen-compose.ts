/**
 * Generates the reference compose stacks from one source of truth, compose/gateway.json (the
 * gateway.json format of docs/configuration.md, plus a "vllm" object per model that gen-config
 * ignores). Everything that must agree is derived here, so nothing is kept in sync by hand:
 *
 *   compose/gpu.yml        nginx + one vLLM server per upstream server + the model downloader  } committed,
 *   compose/dev.yml        the same gateway in front of mock vLLM servers (CPU)                 } reviewed,
 *   compose/tls.yml        override: TLS on the gateway's port                                  } drift-tested
 *   dist/compose/nginx.conf, nginx-tls.conf   nginx/nginx.conf.example rendered for the container } build output,
 *   dist/compose/routes/   routes.conf + gw-routes.js (scripts/gen-config.mjs)                    } mounted with dist/
 *
 * Each upstream server "host:port" becomes a service named host serving the upstream's model with
 * --served-model-name <model>, --max-num-seqs ceil(max_inflight / replicas), --max-model-len and
 * --gpu-memory-utilization from the model's "vllm" object. `npm run compose:gen` writes all of it
 * (`npm run compose:prepare` = build + gen + secrets); `-- --check` (and test/unit/compose.test.ts)
 * fails when a committed compose file is stale.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { Document, isMap, isScalar, isSeq, Pair, visit, YAMLMap } from 'yaml';
import { normalizeConfig, NormalizedConfig, renderRoutesConf, renderRoutesJson, renderRoutesModule } from './gen-config.mjs';
import { NGINX_ENV, projectRoot, renderNginxConf } from '../tools/config';

export const composeDir = join(projectRoot, 'compose');
export const SOURCE = 'compose/gateway.json';

/** Where things live inside the gateway container (dist/ and nginx/ are mounted read-only). */
export const C = {
  dist: '/etc/nginx/gw/dist',
  includes: '/etc/nginx/gw/nginx',
  routes: '/etc/nginx/gw/dist/compose/routes',
  conf: '/etc/nginx/gw/dist/compose/nginx.conf',
  confTls: '/etc/nginx/gw/dist/compose/nginx-tls.conf',
  entrypoint: '/etc/nginx/gw/entrypoint.sh',
  prefix: '/run/gw',
  state: '/var/lib/gw',
  port: 8080,
  adminListen: '127.0.0.1:8081',
  jsModule: 'modules/ngx_http_js_module.so',
} as const;

/**
 * Environment the API-key feature reads (nginx.conf.example declares each with `env`). The admin
 * token is a copy the entrypoint makes readable to the workers; the keys file (hashes only, not a
 * secret) is the Docker secret itself, so edits on the host reach the gateway's 5 s re-read.
 */
export const GATEWAY_ENV: Record<string, string> = {
  GW_ADMIN_TOKEN_FILE: `${C.prefix}/secrets/gw_admin_token`,
  GW_KEYS_FILE: '/run/secrets/gw_keys',
  GW_STATE_DIR: C.state,
};

/**
 * Default images, by exact tag (docs/deployment.md says why these and how to pin a digest). The njs
 * version is the official image's, read from docker-nginx's Dockerfile for that tag (NJS_VERSION);
 * test/unit/compose.test.ts fails when it is not a line CI runs (test/support/ci-versions.json).
 */
export const PINS = {
  nginx: {
    tag: 'nginx:1.30.4',
    nginx: '1.30.4',
    njs: '1.0.1',
    source: 'nginx/docker-nginx stable/debian/Dockerfile at 120635b2e7338f1bfd45bed7d7692538d7338196',
  },
  vllm: { tag: 'vllm/vllm-openai:v0.28.0' },
} as const;

export const IMAGES = {
  nginx: `\${GW_NGINX_IMAGE:-${PINS.nginx.tag}}`,
  vllm: `\${GW_VLLM_IMAGE:-${PINS.vllm.tag}}`,
};

/** nginx that re-resolves upstream{} server names (`server name:port resolve`, open source since 1.27.3). */
export const NGINX_MIN_RESOLVE = '1.27.3';

/** a >= b for dotted version numbers ("1.30.4" >= "1.27.3"). */
export function versionAtLeast(a: string, b: string): boolean {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) > (y[i] ?? 0);
  }
  return true;
}

/**
 * routes.conf for an nginx older than NGINX_MIN_RESOLVE (GW_NGINX_IMAGE set to one): the same
 * upstreams without `resolve`, so names are resolved once, at start (the gateway's depends_on
 * `restart: true` then covers a recreated model server).
 */
export function withoutResolve(routesConf: string): string {
  return routesConf.replace(/^(\s*server [^;\n]*) resolve;$/gm, '$1;');
}

/** An image reference pinned to an exact version: a digest, or a tag with a version number in it. */
export const EXACT_IMAGE_RE = /^[a-z0-9][a-z0-9._/-]*(?::(?=[\w.-]*\d)[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$/;
export function isExactImage(ref: string): boolean {
  return EXACT_IMAGE_RE.test(ref) && (/@sha256:/.test(ref) || /:[^/]+$/.test(ref)) && !/:(latest|stable|mainline|main|nightly)$/.test(ref);
}

/**
 * vLLM's HTTP server (uvicorn) closes idle keep-alive connections after this many seconds
 * (VLLM_HTTP_TIMEOUT_KEEP_ALIVE); set explicitly so the upstreams' keepalive_timeout provably sits
 * below it.
 */
export const VLLM_KEEP_ALIVE_S = 5;

/** Where each model server keeps vLLM's compile caches (VLLM_CACHE_ROOT), on the vllm-cache volume. */
export const VLLM_CACHE = '/vllm-cache';

/**
 * At most this share of a GPU's memory for all servers on it: CUDA contexts (one per process) and,
 * depending on the vLLM version, CUDA-graph memory sit outside --gpu-memory-utilization.
 */
export const GPU_SHARE_MAX = 0.9;

/** Offline and no telemetry: set on every model server (the dev stack's mocks too). */
export const OFFLINE_ENV: Record<string, string> = {
  HF_HUB_OFFLINE: '1',
  TRANSFORMERS_OFFLINE: '1',
  HF_HUB_DISABLE_TELEMETRY: '1',
  VLLM_NO_USAGE_STATS: '1',
  DO_NOT_TRACK: '1',
};

export interface VllmSpec {
  hf_repo: string;
  /** The Hugging Face commit the downloader fetches (40 hex digits): weights do not change under a tag. */
  revision: string;
  /** This model's image when it must differ from the default (an exact tag or digest). */
  image?: string;
  /** vLLM's --limit-mm-per-prompt, as JSON; required for a model with the "vision" capability. */
  limit_mm_per_prompt?: Record<string, number>;
  /** vLLM's --mm-processor-kwargs, as JSON (e.g. {"max_pixels": N} for Qwen2.5-VL models). */
  mm_processor_kwargs?: Record<string, number | string | boolean>;
  max_model_len: number;
  gpu_memory_utilization: number;
  /** GPUs of every replica (default ["0"]); replica_device_ids overrides per service. */
  device_ids?: string[];
  replica_device_ids?: Record<string, string[]>;
  /** Extra `vllm serve` arguments. */
  args?: string[];
  /** Files of the Hugging Face repo the downloader skips (glob patterns). */
  download_ignore?: string[];
}

export interface ModelServer {
  service: string;
  upstream: string;
  /** The upstream's name, as the mock reports it in x-mock-backend. */
  model: string;
  port: number;
  replicas: number;
  maxNumSeqs: number;
  deviceIds: string[];
  vllm: VllmSpec;
  /** The previous model server on the same GPU: vLLM profiles free memory at start, one at a time. */
  after?: string;
  /** That server's health URL, which this one waits for in its own entrypoint (not only compose's depends_on). */
  waitFor?: string;
  /** --tensor-parallel-size this server runs with (1 unless split over several GPUs). */
  tp: number;
}

export interface ComposePlan {
  raw: { upstreams: Record<string, unknown>; models: Record<string, { vllm?: VllmSpec }> };
  cfg: NormalizedConfig;
  servers: ModelServer[];
}

const SERVICE_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;

function fail(msg: string): never {
  throw new Error(`${SOURCE}: ${msg}`);
}

function checkVllm(model: string, v: unknown): VllmSpec {
  const at = `models["${model}"].vllm`;
  if (!v || typeof v !== 'object') fail(`${at}: every model of the compose stack needs a "vllm" object (hf_repo, max_model_len, gpu_memory_utilization)`);
  const s = v as VllmSpec;
  if (typeof s.hf_repo !== 'string' || !/^[\w.-]+\/[\w.-]+$/.test(s.hf_repo)) fail(`${at}.hf_repo: a Hugging Face repo id like "org/name"`);
  if (!Number.isInteger(s.max_model_len) || s.max_model_len < 1) fail(`${at}.max_model_len: a whole number of tokens`);
  if (typeof s.gpu_memory_utilization !== 'number' || !(s.gpu_memory_utilization > 0 && s.gpu_memory_utilization <= 0.95)) {
    fail(`${at}.gpu_memory_utilization: a fraction of the GPU's memory, above 0 and at most 0.95`);
  }
  for (const f of ['args', 'download_ignore', 'device_ids'] as const) {
    const list = s[f];
    if (list !== undefined && (!Array.isArray(list) || list.some((a) => typeof a !== 'string' || a.includes('$')))) {
      fail(`${at}.${f}: a list of strings without "$"`);
    }
  }
  if (typeof s.revision !== 'string' || !/^[0-9a-f]{40}$/.test(s.revision)) {
    fail(`${at}.revision: the Hugging Face commit to serve, 40 hex digits (the repo's "Files and versions" history); a branch moves under you`);
  }
  if (s.image !== undefined && (typeof s.image !== 'string' || !isExactImage(s.image))) {
    fail(`${at}.image: an exact image reference like "vllm/vllm-openai:v0.10.2" or "...@sha256:<digest>", not a floating tag`);
  }
  for (const f of ['limit_mm_per_prompt', 'mm_processor_kwargs'] as const) {
    const o = s[f];
    if (o !== undefined && (!o || typeof o !== 'object' || Array.isArray(o) || Object.entries(o).some(([k, v]) => !/^\w+$/.test(k) || !['number', 'string', 'boolean'].includes(typeof v) || String(v).includes('$')))) {
      fail(`${at}.${f}: an object of plain values, e.g. {"image": 1, "video": 0}`);
    }
  }
  if (s.limit_mm_per_prompt && Object.values(s.limit_mm_per_prompt).some((v) => !Number.isInteger(v) || (v as number) < 0)) {
    fail(`${at}.limit_mm_per_prompt: whole numbers of items per prompt, e.g. {"image": 1, "video": 0}`);
  }
  if ((s.args ?? []).some((a) => /^--(limit-mm-per-prompt|mm-processor-kwargs)\b/.test(a))) {
    fail(`${at}.args: use the limit_mm_per_prompt / mm_processor_kwargs fields (the generator renders their JSON form)`);
  }
  return s;
}

/** Validates compose/gateway.json (gen-config's rules plus the vllm objects) and lays out the model servers. */
export function planCompose(raw: ComposePlan['raw']): ComposePlan {
  const cfg = normalizeConfig(raw, SOURCE);
  const servers: ModelServer[] = [];
  const seen = new Set<string>();
  const perDevice: Record<string, { total: number; last?: string }> = {};
  for (const [upstream, up] of Object.entries(cfg.upstreams)) {
    const models = Object.entries(cfg.models).filter(([, m]) => m.upstream === upstream).map(([n]) => n);
    if (models.length !== 1) {
      fail(`upstreams.${upstream}: a vLLM server serves one model, but ${models.length} models use this upstream (${models.join(', ') || 'none'}); give each model its own upstream`);
    }
    const model = models[0];
    const vllm = checkVllm(model, raw.models[model].vllm);
    if (cfg.models[model].capabilities.includes('vision') && !vllm.limit_mm_per_prompt) {
      fail(`models["${model}"].vllm.limit_mm_per_prompt: a vision model needs its inputs bounded, e.g. {"image": 1, "video": 0}`);
    }
    const maxInflight = cfg.models[model].max_inflight;
    if (maxInflight < 1) fail(`models["${model}"].max_inflight: set the model's concurrency cap; the servers' --max-num-seqs is derived from it`);
    const replicas = up.servers.filter((s) => !/ backup\b/.test(s)).length || up.servers.length;
    for (const line of up.servers) {
      const m = /^([^:\s]+):(\d+)(?:\s|$)/.exec(line);
      if (!m || !SERVICE_RE.test(m[1])) {
        fail(`upstreams.${upstream}.servers: "${line}" must be "<service>:<port>", the service a compose DNS name (lowercase letters, digits, -)`);
      }
      const service = m[1];
      if (seen.has(service)) fail(`upstreams.${upstream}.servers: service "${service}" is listed twice`);
      seen.add(service);
      const deviceIds = vllm.replica_device_ids?.[service] ?? vllm.device_ids ?? ['0'];
      const tpArg = (vllm.args ?? []).findIndex((a) => /^(--tensor-parallel-size|-tp)$/.test(a));
      const tp = tpArg >= 0 ? Number((vllm.args ?? [])[tpArg + 1]) || 1 : deviceIds.length;
      const s: ModelServer = {
        service, upstream, model, port: Number(m[2]), replicas,
        maxNumSeqs: Math.ceil(maxInflight / replicas), deviceIds, vllm, tp,
      };
      for (const d of deviceIds) {
        const slot = (perDevice[d] ??= { total: 0 });
        slot.total += vllm.gpu_memory_utilization; // vLLM's share is per GPU, on each GPU of a replica
        if (slot.last && !s.after) s.after = slot.last;
        slot.last = service;
        if (slot.total > GPU_SHARE_MAX + 1e-9) {
          fail(`GPU ${d}: the model servers on it ask for ${slot.total.toFixed(2)} of its memory (gpu_memory_utilization); keep the sum at most ${GPU_SHARE_MAX} (CUDA contexts and graphs need the rest) or move a replica with replica_device_ids`);
        }
      }
      servers.push(s);
    }
    const mine = servers.filter((x) => x.upstream === upstream).map((x) => x.service);
    for (const name of Object.keys(vllm.replica_device_ids ?? {})) {
      if (!mine.includes(name)) fail(`models["${model}"].vllm.replica_device_ids: "${name}" is not one of the servers of upstream ${upstream} (${mine.join(', ')})`);
    }
  }
  for (const s of servers) {
    const prev = servers.find((x) => x.service === s.after);
    if (prev) s.waitFor = `http://${prev.service}:${prev.port}/health`;
  }
  return { raw, cfg, servers };
}

export function loadPlan(path = join(composeDir, 'gateway.json')): ComposePlan {
  return planCompose(JSON.parse(readFileSync(path, 'utf8')));
}

// ---------------------------------------------------------------------------------------------
// nginx.conf for the container: nginx/nginx.conf.example with the container's paths.

/**
 * Renders nginx/nginx.conf.example for the container with the same renderer as the tests and
 * `npm start`; only the values differ: container paths, `worker_processes auto`, the admin API on
 * the container's loopback (reach it with `docker compose exec gateway curl ...`). The example's
 * placeholder legend is replaced by a header saying where the file comes from. With `tls`, the
 * gateway's port speaks TLS with the certificate from Docker secrets (compose/tls.yml).
 */
export function renderContainerNginxConf(opts: { tls: boolean }): string {
  const header = `# Generated from nginx/nginx.conf.example by scripts/gen-compose.ts (npm run compose:gen): the\n` +
    `# gateway container's config${opts.tls ? ' with TLS (compose/tls.yml)' : ''}. Edit the example or the generator, not this file.\n`;
  const extra = [
    '    # Docker\'s embedded DNS, for both users of compose service names: the upstream{} servers',
    '    # (`resolve`: looked up again every `valid`, so a recreated container\'s new address is',
    '    # picked up and a backend that is not up yet does not stop nginx from starting) and ngx.fetch',
    '    # (health probes, /v1/models: nginx/discovery-http.conf), which reach the same names.',
    '    resolver 127.0.0.11 valid=10s ipv6=off;',
    '    resolver_timeout 2s;',
  ];
  if (opts.tls) {
    extra.push(
      '    # TLS termination: certificate and key are Docker secrets (compose/tls.yml).',
      '    ssl_certificate /run/secrets/gw_tls_cert;',
      '    ssl_certificate_key /run/secrets/gw_tls_key;',
      '    ssl_protocols TLSv1.2 TLSv1.3;',
      '    ssl_session_cache shared:gw_tls:10m;',
      '    ssl_session_timeout 1h;',
    );
  }
  const conf = renderNginxConf({
    prefix: C.prefix,
    listen: opts.tls ? `${C.port} ssl` : String(C.port),
    adminListen: C.adminListen,
    jsModule: C.jsModule,
    includeDir: C.includes,
    distDir: C.dist,
    routesDir: C.routes,
    httpExtra: extra.join('\n'),
    patch: (c) => c.replace(/^worker_processes \d+;$/m, 'worker_processes auto;'),
  });
  return header + conf.replace(/^(#[^\n]*\n)+/, '');
}

/**
 * The container config with the container's paths mapped to this checkout (and, optionally, its
 * ports to free local ones), for `nginx -t` and for running the stack's config without Docker.
 */
export function localizeNginxConf(conf: string, o: {
  prefix: string; jsModule: string | null; routesDir?: string; secretsDir?: string; listen?: string; adminListen?: string;
}): string {
  let out = conf
    .replace(/^load_module [^\n]*$/m, o.jsModule ? `load_module ${o.jsModule};` : '')
    .replaceAll(`${C.routes}/`, `${o.routesDir ?? join(projectRoot, 'dist/compose/routes')}/`)
    .replaceAll(`${C.dist}/`, `${join(projectRoot, 'dist')}/`)
    .replaceAll(`${C.includes}/`, `${join(projectRoot, 'nginx')}/`)
    .replaceAll(`${C.prefix}/`, `${o.prefix}/`);
  if (o.secretsDir) out = out.replaceAll('/run/secrets/', `${o.secretsDir}/`);
  if (o.listen) out = out.replace(new RegExp(`^(\\s*listen )${C.port}\\b`, 'm'), `$1${o.listen}`);
  if (o.adminListen) out = out.replaceAll(`listen ${C.adminListen};`, `listen ${o.adminListen};`);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Compose files.

type Obj = Record<string, unknown>;

const HEADER = (what: string) =>
  ` ${what}\n Generated from ${SOURCE} by scripts/gen-compose.ts: edit that file and run\n` +
  ` \`npm run compose:gen\`; test/unit/compose.test.ts fails when this file is stale.`;

function gatewayService(dependsOn: string[]): Obj {
  const healthTarget = `http://127.0.0.1:${C.port}/health`;
  return {
    image: IMAGES.nginx,
    entrypoint: ['/bin/sh', C.entrypoint],
    command: [C.conf],
    // NGINX_ENV: malloc thresholds for multi-MB OCR bodies, read by glibc at start (no `env` needed).
    environment: { ...NGINX_ENV, ...GATEWAY_ENV },
    secrets: ['gw_admin_token', 'gw_keys'],
    volumes: [
      // The bundle plus dist/compose/ (this stack's nginx.conf and routing data): npm run compose:prepare.
      `../dist:${C.dist}:ro`,
      `../nginx:${C.includes}:ro`,
      `./gateway-entrypoint.sh:${C.entrypoint}:ro`,
      `gw-state:${C.state}`,
    ],
    read_only: true,
    tmpfs: [C.prefix],
    ports: [`\${GW_BIND:-127.0.0.1}:\${GW_PORT:-8080}:${C.port}`],
    networks: ['models', 'edge'],
    // The upstreams re-resolve service names (routes.conf: `resolve`), so a recreated model server
    // is found without this; restart: true stays for older images set through GW_NGINX_IMAGE.
    depends_on: Object.fromEntries(dependsOn.map((s) => [s, { condition: 'service_healthy', restart: true }])),
    // GET /health is answered by nginx and njs alone (no backend call): liveness of the gateway.
    healthcheck: {
      test: ['CMD', 'curl', '-fsS', '-o', '/dev/null', '--max-time', '3', healthTarget],
      interval: '10s', timeout: '5s', retries: 3, start_period: '10s', start_interval: '1s',
    },
    // SIGQUIT = graceful: workers finish in-flight requests (worker_shutdown_timeout 30s).
    stop_signal: 'SIGQUIT',
    stop_grace_period: '35s',
    restart: 'unless-stopped',
  };
}

function topLevel(networks: Obj, volumes: Obj): Obj {
  return {
    networks,
    volumes,
    secrets: {
      gw_admin_token: { file: '${GW_SECRETS_DIR:-./secrets}/gw_admin_token' },
      gw_keys: { file: '${GW_SECRETS_DIR:-./secrets}/gw_keys.json' },
    },
  };
}

const NETWORKS = {
  models: { internal: true },
  edge: {},
};

/** The downloader's script: fetch each model into /models/<repo id>, the path vLLM serves from. */
const DOWNLOAD_PY = [
  'import json, sys',
  'from huggingface_hub import snapshot_download',
  'for m in json.loads(sys.argv[1]):',
  '    print("downloading", m["repo"], "->", m["dir"], flush=True)',
  '    snapshot_download(repo_id=m["repo"], revision=m.get("revision"), local_dir=m["dir"], ignore_patterns=m.get("ignore") or None)',
  'print("all weights are in the models volume; now: docker compose -f compose/gpu.yml up -d", flush=True)',
].join('\n');

/**
 * The model server's entrypoint: fails fast with a clear message when the weights are missing;
 * then, when GW_WAIT_FOR names the health URL of the server before it on the same GPU, waits for
 * that server to be healthy. vLLM sizes its memory from what is free when it starts, so servers
 * sharing a GPU must start one after another; compose's depends_on orders only `compose up`, not
 * a daemon or host restart (Docker then starts every container at once) nor a restart policy. It
 * gives up after GW_WAIT_MAX seconds and exits, and its restart policy tries again.
 */
const WAIT_PY = 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)';
export const VLLM_START = [
  'test -f "$$1/config.json" || { echo "no weights at $$1: run the model-downloader first (docs/deployment.md)" >&2; exit 1; }',
  'if [ -n "$${GW_WAIT_FOR:-}" ]; then n=0; until python3 -c "' + WAIT_PY + '" "$$GW_WAIT_FOR" 2>/dev/null; do ' +
    'n=$$((n + 5)); if [ "$$n" -ge "$${GW_WAIT_MAX:-1800}" ]; then echo "$$GW_WAIT_FOR is not healthy after $$n s: exiting; the restart policy retries" >&2; exit 1; fi; ' +
    'case $$((n % 60)) in 0) echo "waiting for $$GW_WAIT_FOR (the server before this one on the GPU) to be healthy" >&2;; esac; sleep 5; done; fi',
  'exec vllm serve "$$@"',
].join('; ');

export function modelDir(v: VllmSpec): string {
  return `/models/${v.hf_repo}`;
}

export function vllmArgs(s: ModelServer): string[] {
  return [
    modelDir(s.vllm),
    '--served-model-name', s.model,
    '--host', '0.0.0.0',
    '--port', String(s.port),
    '--max-num-seqs', String(s.maxNumSeqs),
    '--max-model-len', String(s.vllm.max_model_len),
    '--gpu-memory-utilization', String(s.vllm.gpu_memory_utilization),
    // A replica on several GPUs splits the model over them (tensor parallel), unless args say otherwise.
    ...(s.deviceIds.length > 1 && !(s.vllm.args ?? []).some((a) => /^--tensor-parallel-size|^-tp$/.test(a)) ? ['--tensor-parallel-size', String(s.deviceIds.length)] : []),
    // JSON form: vLLM >= 0.10 rejects the old key=value form.
    ...(s.vllm.limit_mm_per_prompt ? ['--limit-mm-per-prompt', JSON.stringify(s.vllm.limit_mm_per_prompt)] : []),
    ...(s.vllm.mm_processor_kwargs ? ['--mm-processor-kwargs', JSON.stringify(s.vllm.mm_processor_kwargs)] : []),
    ...(s.vllm.args ?? []),
  ];
}

/**
 * The model server's image: the model's own exact tag from compose/gateway.json (overridable per
 * service, GW_IMAGE_VLLM_OCR for vllm-ocr, to try another tag without editing it), or the default.
 */
export function vllmImage(s: ModelServer): string {
  if (!s.vllm.image) return IMAGES.vllm;
  return `\${GW_IMAGE_${s.service.toUpperCase().replace(/-/g, '_')}:-${s.vllm.image}}`;
}


export function renderGpuCompose(plan: ComposePlan): string {
  const services: Obj = { gateway: gatewayService(plan.servers.map((s) => s.service)) };
  for (const s of plan.servers) {
    services[s.service] = {
      image: vllmImage(s),
      entrypoint: ['/bin/sh', '-c', VLLM_START, 'vllm-serve'],
      command: vllmArgs(s),
      environment: {
        ...OFFLINE_ENV,
        VLLM_HTTP_TIMEOUT_KEEP_ALIVE: String(VLLM_KEEP_ALIVE_S),
        VLLM_CACHE_ROOT: VLLM_CACHE,
        ...(s.waitFor ? { GW_WAIT_FOR: s.waitFor } : {}),
      },
      // The compile caches survive restarts (vllm-cache), so a restarted server does not recompile.
      volumes: ['models:/models:ro', `vllm-cache:${VLLM_CACHE}`],
      networks: ['models'],
      // Tensor-parallel workers exchange tensors through /dev/shm (NCCL): a larger one instead of
      // `ipc: host`, which would share the host's IPC namespace with the container.
      shm_size: s.tp > 1 ? '16gb' : '2gb',
      // What NVIDIA's containers recommend for CUDA: pinned (page-locked) memory and a 64 MB stack.
      ulimits: { memlock: { soft: -1, hard: -1 }, stack: 67108864 },
      deploy: { resources: { reservations: { devices: [{ driver: 'nvidia', device_ids: s.deviceIds, capabilities: ['gpu'] }] } } },
      healthcheck: {
        test: ['CMD', 'python3', '-c', `import urllib.request; urllib.request.urlopen("http://127.0.0.1:${s.port}/health", timeout=5)`],
        interval: '15s', timeout: '10s', retries: 3, start_period: '20m', start_interval: '10s',
      },
      ...(s.after ? { depends_on: { [s.after]: { condition: 'service_healthy' } } } : {}),
      restart: 'unless-stopped',
    };
  }
  const downloads: { repo: string; dir: string; revision?: string; ignore?: string[] }[] = [];
  for (const s of plan.servers) {
    if (downloads.some((d) => d.repo === s.vllm.hf_repo)) continue;
    downloads.push({ repo: s.vllm.hf_repo, dir: modelDir(s.vllm), ...(s.vllm.revision ? { revision: s.vllm.revision } : {}), ...(s.vllm.download_ignore ? { ignore: s.vllm.download_ignore } : {}) });
  }
  services['model-downloader'] = {
    image: IMAGES.vllm,
    profiles: ['setup'],
    entrypoint: ['python3', '-c', DOWNLOAD_PY],
    command: [JSON.stringify(downloads)],
    // HF_TOKEN passes through from your shell for gated repos; nothing is baked into an image.
    environment: { HF_TOKEN: '${HF_TOKEN:-}', HF_HUB_DISABLE_TELEMETRY: '1', DO_NOT_TRACK: '1' },
    volumes: ['models:/models'],
    networks: ['egress'],
    // A one-shot job (`docker compose run`), not a server: there is nothing to health-check.
    healthcheck: { disable: true },
    restart: 'no',
  };
  const doc = {
    name: 'njs-gateway-gpu',
    services,
    ...topLevel({ ...NETWORKS, egress: {} }, { models: {}, 'vllm-cache': {}, 'gw-state': {} }),
  };
  return toYaml(doc, HEADER('GPU stack: the nginx gateway in front of one vLLM server per model (docs/deployment.md).'), {
    'networks.models': ' Model servers only: no route out of the host and no published ports.',
    'networks.edge': ' The gateway\'s published port (a container only on an internal network cannot publish one).',
    'networks.egress': ' Only the model-downloader (profile "setup") reaches the internet.',
  });
}

export function renderDevCompose(plan: ComposePlan, tsxVersion: string): string {
  const services: Obj = { gateway: gatewayService(plan.servers.map((s) => s.service)) };
  for (const s of plan.servers) {
    services[s.service] = {
      build: { context: '..', dockerfile: 'compose/mock-vllm.Dockerfile', args: { TSX_VERSION: tsxVersion } },
      command: [
        '--name', s.upstream, '--host', '0.0.0.0', '--port', String(s.port), '--models', s.model,
        '--max-concurrency', String(s.maxNumSeqs), '--max-model-len', String(s.vllm.max_model_len),
      ],
      environment: { ...OFFLINE_ENV },
      networks: ['models'],
      read_only: true,
      tmpfs: ['/tmp'],
      healthcheck: {
        test: ['CMD', 'node', '-e', `fetch("http://127.0.0.1:${s.port}/health").then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))`],
        interval: '10s', timeout: '5s', retries: 3, start_period: '30s', start_interval: '1s',
      },
      restart: 'unless-stopped',
    };
  }
  const doc = { name: 'njs-gateway-dev', services, ...topLevel({ ...NETWORKS }, { 'gw-state': {} }) };
  return toYaml(doc, HEADER('CPU dev stack: the same gateway and nginx config in front of mock vLLM servers (docs/deployment.md).'), {
    'networks.models': ' Model servers only: no route out of the host and no published ports.',
    'networks.edge': ' The gateway\'s published port.',
  });
}

export function renderTlsOverride(): string {
  const doc = {
    services: {
      gateway: {
        command: [C.confTls],
        secrets: ['gw_tls_cert', 'gw_tls_key'],
        healthcheck: { test: ['CMD', 'curl', '-fksS', '-o', '/dev/null', '--max-time', '3', `https://127.0.0.1:${C.port}/health`] },
      },
    },
    secrets: {
      gw_tls_cert: { file: '${GW_TLS_CERT:-./secrets/tls.crt}' },
      gw_tls_key: { file: '${GW_TLS_KEY:-./secrets/tls.key}' },
    },
  };
  return toYaml(doc, HEADER('TLS override for either stack: docker compose -f compose/gpu.yml -f compose/tls.yml up -d\n The gateway\'s port then speaks only TLS (publish it on 443 with GW_PORT=443).'), {});
}

function toYaml(obj: Obj, header: string, comments: Record<string, string>): string {
  const doc = new Document(obj);
  doc.commentBefore = header;
  for (const [path, text] of Object.entries(comments)) {
    const keys = path.split('.');
    const parent = doc.getIn(keys.slice(0, -1), true);
    if (!isMap(parent)) throw new Error(`gen-compose: no map at ${path}`);
    const pair = (parent as YAMLMap).items.find((p: Pair) => (isScalar(p.key) ? p.key.value : p.key) === keys[keys.length - 1]);
    if (!pair) throw new Error(`gen-compose: no key at ${path}`);
    if (isScalar(pair.key)) pair.key.commentBefore = text;
    else throw new Error(`gen-compose: key at ${path} is not a scalar node`);
  }
  // Short lists of scalars read best on one line (networks, healthcheck tests, capabilities).
  const flow = (node: unknown): void => {
    if (isSeq(node)) {
      if (node.items.every((i) => isScalar(i)) && node.items.length <= 6 && JSON.stringify(node.toJSON()).length < 70) node.flow = true;
      for (const item of node.items) flow(item);
    } else if (isMap(node)) {
      for (const p of node.items) flow(p.value);
    }
  };
  flow(doc.contents);
  // YAML 1.1 readers (and people) take a bare no/yes/on/off for a boolean: quote those strings.
  visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value === 'string' && /^(y|n|yes|no|on|off|true|false|null|~)$/i.test(node.value)) node.type = 'QUOTE_DOUBLE';
    },
  });
  return doc.toString({ lineWidth: 0, singleQuote: true, flowCollectionPadding: false });
}

// ---------------------------------------------------------------------------------------------

/** The committed compose files, by path relative to the project root. */
export function generateCompose(plan = loadPlan()): Record<string, string> {
  const pkg = JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8'));
  const tsx = pkg.devDependencies?.tsx;
  if (!/^\d+\.\d+\.\d+$/.test(tsx ?? '')) throw new Error('package.json: devDependencies.tsx must be an exact version (the mock image installs the same one)');
  return {
    'compose/gpu.yml': renderGpuCompose(plan),
    'compose/dev.yml': renderDevCompose(plan, tsx),
    'compose/tls.yml': renderTlsOverride(),
  };
}

/**
 * What the gateway container loads from dist/compose/ (a build output like the bundle, so a change
 * to nginx.conf.example or gen-config needs no commit here): `dir` defaults to dist/compose.
 */
export function generateNginxFiles(plan = loadPlan(), opts: { resolve?: boolean } = {}): Record<string, string> {
  const routes = renderRoutesConf(plan.cfg, SOURCE, C.routes, { resolve: true });
  return {
    'routes/routes.conf': opts.resolve === false ? withoutResolve(routes) : routes,
    'routes/gw-routes.js': renderRoutesModule(plan.cfg, SOURCE),
    'routes/gw-routes.json': renderRoutesJson(plan.cfg),
    'nginx.conf': renderContainerNginxConf({ tls: false }),
    'nginx-tls.conf': renderContainerNginxConf({ tls: true }),
  };
}

export function writeFiles(dir: string, files: Record<string, string>): string[] {
  return Object.entries(files).map(([p, text]) => {
    const abs = join(dir, p);
    mkdirSync(dirname(abs), { recursive: true });
    writeFileSync(abs, text);
    return abs;
  });
}

/** Committed compose files whose content differs from what the generator makes now. */
export function staleFiles(files = generateCompose()): string[] {
  return Object.entries(files)
    .filter(([p, text]) => {
      const abs = join(projectRoot, p);
      return !existsSync(abs) || readFileSync(abs, 'utf8') !== text;
    })
    .map(([p]) => p);
}

function main(argv: string[]): void {
  const plan = loadPlan();
  const files = generateCompose(plan);
  if (argv.includes('--check')) {
    const stale = staleFiles(files);
    if (stale.length) {
      console.error(`gen-compose: stale, run \`npm run compose:gen\`: ${stale.join(', ')}`);
      process.exit(1);
    }
    console.log('gen-compose: compose/ is up to date');
    return;
  }
  // --no-resolve: for a GW_NGINX_IMAGE older than NGINX_MIN_RESOLVE, which cannot parse `resolve`.
  const resolve = !argv.includes('--no-resolve');
  if (!resolve) console.log(`gen-compose: --no-resolve: upstream names are resolved once, at start (nginx < ${NGINX_MIN_RESOLVE})`);
  const written = [...writeFiles(projectRoot, files), ...writeFiles(join(projectRoot, 'dist/compose'), generateNginxFiles(plan, { resolve }))];
  for (const abs of written) console.log(`wrote ${relative(process.cwd(), abs)}`);
  for (const s of plan.servers) {
    console.log(`${s.service}: ${s.model} (${s.upstream}, ${s.replicas} replica${s.replicas > 1 ? 's' : ''} share max_inflight ${plan.cfg.models[s.model].max_inflight} -> --max-num-seqs ${s.maxNumSeqs}; GPU ${s.deviceIds.join(',')})`);
  }
}

if (process.argv[1] && /gen-compose\.[cm]?[jt]s$/.test(process.argv[1])) main(process.argv.slice(2));

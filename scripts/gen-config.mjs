// Renders the gateway's one configuration file (nginx/gateway.json, or the file named by GW_CONFIG)
// into what nginx loads: dist/routes/routes.conf (upstream{} blocks, and the js_preload_object of
// gw-routes.json, the routing table every request reads) and dist/routes/gw-routes.js (the same table
// for the admin and discovery handlers). All come from the same data, so they cannot drift.
// See docs/configuration.md.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { normalizeJwtConfig } from './jwt-config.mjs';

// The same list as njs/src/core/routes.ts CAPABILITIES (test/unit/concepts.test.ts keeps them equal).
export const CAPABILITIES = ['chat', 'completions', 'embeddings', 'vision', 'audio', 'rerank'];
const NAME_RE = /^[A-Za-z0-9_]{1,64}$/;
// One nginx `server` argument list: an address plus optional parameters, nothing that could end
// the directive or open a block.
const SERVER_RE = /^[A-Za-z0-9_.:[\]-]+(?: [a-z_]+(?:=[A-Za-z0-9_.]+)?)*$/;

/** Parses "500ms", "60s", "2m", "1h" (or a number of ms) into milliseconds. */
export function parseDuration(v, what) {
  if (typeof v === 'number' && v >= 0) return v;
  const m = typeof v === 'string' && /^(\d+)(ms|s|m|h)$/.exec(v);
  if (!m) throw new Error(`${what}: "${v}" is not a duration; write e.g. "500ms", "60s" or "2m"`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60000, h: 3600000 }[m[2]];
}

function intIn(v, dflt, what, min, max) {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < min || v > max) throw new Error(`${what}: must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  return v;
}

/** Validates a parsed gateway.json and returns it normalized; throws an Error that names the fix. */
export function normalizeConfig(raw, source = 'gateway.json') {
  if (!raw || typeof raw !== 'object') throw new Error(`${source}: must be a JSON object with "upstreams" and "models"`);
  const upstreams = {};
  for (const [name, u] of Object.entries(raw.upstreams || {})) {
    const at = `${source}: upstreams.${name}`;
    if (!NAME_RE.test(name)) throw new Error(`${at}: upstream names are letters, digits and _ (they become nginx upstream names)`);
    if (!u || !Array.isArray(u.servers) || u.servers.length === 0) throw new Error(`${at}.servers: list at least one "host:port"`);
    for (const s of u.servers) {
      if (typeof s !== 'string' || !SERVER_RE.test(s)) throw new Error(`${at}.servers: "${s}" is not "host:port [nginx server parameters]"`);
    }
    upstreams[name] = {
      servers: u.servers,
      keepalive: intIn(u.keepalive, 32, `${at}.keepalive`, 0, 10000),
      max_fails: intIn(u.max_fails, 2, `${at}.max_fails`, 0, 1000),
      fail_timeout_ms: parseDuration(u.fail_timeout ?? '10s', `${at}.fail_timeout`),
      // Idle upstream connections must close on nginx's side first: a backend that closes one
      // while nginx reuses it fails that request. vLLM (uvicorn) closes after 5 s idle
      // (VLLM_HTTP_TIMEOUT_KEEP_ALIVE), so the default stays below it.
      keepalive_timeout_ms: parseDuration(u.keepalive_timeout ?? '4s', `${at}.keepalive_timeout`),
      api_key_env: typeof u.api_key_env === 'string' ? u.api_key_env : '',
    };
    if (upstreams[name].keepalive_timeout_ms < 1000 || upstreams[name].keepalive_timeout_ms % 1000 !== 0) {
      throw new Error(`${at}.keepalive_timeout: whole seconds, at least "1s", below the backend's own idle timeout (vLLM: 5 s), e.g. "4s"`);
    }
    if (u.api_key_env !== undefined && !/^[A-Z_][A-Z0-9_]{0,63}$/.test(upstreams[name].api_key_env)) {
      throw new Error(`${at}.api_key_env: must be an environment variable name like "VLLM_OCR_API_KEY"`);
    }
  }
  if (Object.keys(upstreams).length === 0) throw new Error(`${source}: "upstreams" must name at least one upstream`);
  const models = {};
  const aliases = {};
  for (const [name, m] of Object.entries(raw.models || {})) {
    const at = `${source}: models["${name}"]`;
    if (!m || typeof m.upstream !== 'string' || !upstreams[m.upstream]) {
      throw new Error(`${at}.upstream: must be one of the upstreams (${Object.keys(upstreams).join(', ')})`);
    }
    const caps = m.capabilities ?? ['chat', 'completions'];
    for (const c of caps) if (!CAPABILITIES.includes(c)) throw new Error(`${at}.capabilities: "${c}" is not one of ${CAPABILITIES.join(', ')}`);
    models[name] = {
      upstream: m.upstream,
      capabilities: caps,
      max_inflight: intIn(m.max_inflight, 0, `${at}.max_inflight`, 0, 100000),
      max_queue: intIn(m.max_queue, 0, `${at}.max_queue`, 0, 100000),
      queue_timeout_ms: parseDuration(m.queue_timeout ?? '30s', `${at}.queue_timeout`),
      slot_lease_ms: parseDuration(m.slot_lease ?? '20m', `${at}.slot_lease`),
      owned_by: typeof m.owned_by === 'string' ? m.owned_by : 'vllm',
      created: intIn(m.created, 0, `${at}.created`, 0, 4102444800),
    };
    for (const a of m.aliases || []) {
      if (typeof a !== 'string' || a.length === 0) throw new Error(`${at}.aliases: aliases are non-empty strings`);
      if (aliases[a] || (raw.models[a] && a !== name)) throw new Error(`${at}.aliases: "${a}" is already a model or an alias`);
      aliases[a] = name;
    }
  }
  if (Object.keys(models).length === 0) throw new Error(`${source}: "models" must name at least one model`);
  return { upstreams, models, aliases, jwt: normalizeJwtConfig(raw.jwt, source) };
}

/**
 * routes.conf: one upstream{} per upstream, and, when `dir` (where nginx will find this folder, an
 * absolute path) is given, the js_preload_object that shares the routing table with every request's
 * VM read-only, instead of each request building it (njs/src/ngx/table.ts).
 * `opts.resolve` (nginx >= 1.27.3, with a `resolver` in http{}): each upstream gets a shared-memory
 * zone and its servers the `resolve` parameter, so host names are looked up again as their DNS
 * records expire (a restarted container's new address) and a name that does not resolve yet does
 * not stop nginx from starting.
 */
export function renderRoutesConf(cfg, source, dir, opts) {
  const resolve = Boolean(opts?.resolve);
  const lines = [`# Generated from ${source} by scripts/gen-config.mjs. Edit that file, rebuild, reload nginx.`];
  if (dir !== undefined) {
    if (!isAbsolute(dir)) throw new Error(`routes.conf: the routes folder must be an absolute path (got ${dir})`);
    lines.push(`js_preload_object gw_routes from ${join(dir, 'gw-routes.json')};`);
  }
  for (const [name, u] of Object.entries(cfg.upstreams)) {
    lines.push(`upstream ${name} {`, '    least_conn;');
    // Prefixed: zone names share one namespace with every other shared-memory zone (js_shared_dict_zone).
    if (resolve) lines.push(`    zone upstream_${name} 64k;`);
    for (const s of u.servers) {
      const params = / (max_fails|fail_timeout)=/.test(s) ? '' : ` max_fails=${u.max_fails} fail_timeout=${Math.ceil(u.fail_timeout_ms / 1000)}s`;
      const re = resolve && !/ resolve\b/.test(s) && !/^[\d.]+:\d+|^\[/.test(s) ? ' resolve' : '';
      lines.push(`    server ${s}${params}${re};`);
    }
    if (u.keepalive > 0) lines.push(`    keepalive ${u.keepalive};`);
    lines.push(`    keepalive_timeout ${u.keepalive_timeout_ms / 1000}s;`);
    lines.push('}');
  }
  return lines.join('\n') + '\n';
}

function routesTable(cfg) {
  return {
    models: cfg.models,
    aliases: cfg.aliases,
    upstreams: Object.fromEntries(Object.entries(cfg.upstreams).map(([n, u]) => [n, { servers: u.servers.map((s) => s.split(' ')[0]), api_key_env: u.api_key_env }])),
    jwt: cfg.jwt,
  };
}

/** gw-routes.json: the routing table js_preload_object loads (the same data as gw-routes.js). */
export function renderRoutesJson(cfg) {
  return JSON.stringify(routesTable(cfg), null, 1) + '\n';
}

export function renderRoutesModule(cfg, source) {
  const table = routesTable(cfg);
  // A function, not an object: njs runs a module's top level again in every request's VM, and only
  // the requests that route read the table (njs/build.mjs).
  return `// Generated from ${source} by scripts/gen-config.mjs. Edit that file, rebuild, reload nginx.\n` +
    `export default function () {\n return ${JSON.stringify(table, null, 1)};\n}\n`;
}

export function loadConfig(path) {
  let raw;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: ${e.message}`);
  }
  return normalizeConfig(raw, path);
}

function writeRoutes(cfg, source, outdir) {
  const dir = resolve(outdir);
  writeFileSync(join(dir, 'routes.conf'), renderRoutesConf(cfg, source, dir));
  writeFileSync(join(dir, 'gw-routes.js'), renderRoutesModule(cfg, source));
  writeFileSync(join(dir, 'gw-routes.json'), renderRoutesJson(cfg));
}

/** Writes routes.conf, gw-routes.js and gw-routes.json for the config at `path` into `outdir`. */
export function renderConfig(path, outdir) {
  const cfg = loadConfig(path);
  mkdirSync(outdir, { recursive: true });
  writeRoutes(cfg, path, outdir);
  return cfg;
}

/** The same rendering for a config object (tests build theirs in code). */
export function renderConfigObject(raw, outdir, source = 'test config') {
  const cfg = normalizeConfig(raw, source);
  mkdirSync(outdir, { recursive: true });
  writeRoutes(cfg, source, outdir);
  return cfg;
}

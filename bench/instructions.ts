/**
 * Instructions per request: what the gateway costs over plain nginx, counted by valgrind's callgrind
 * on a single-process nginx (`master_process off`), so the number does not move with the machine's
 * noise the way req/s and CPU seconds do on a shared 2-core box. Same binary, same config, same
 * requests: the same count for the requests themselves, whatever else the machine is doing.
 *
 * Per target: nginx starts under callgrind with instrumentation off (startup is not counted), takes
 * a warm-up, then `callgrind_control -i on` counts an idle window (no requests: the gateway's health
 * checks and js_periodic jobs, which run by the clock), dumps it, counts exactly the measured
 * requests (c=4, autocannon `amount`), `-i off`. The result is the measured window's total minus the
 * idle rate times its wall time, per request: the requests' own cost, which a loaded machine that
 * stretches the window does not move. Each row keeps the window's length and the idle rate.
 * Skipped, with the reason in the report, when valgrind is not installed (Debian: apt-get install
 * valgrind; it ships callgrind_control).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NginxRuntime } from '../tools/findNginx';
import { NGINX_ENV, projectRoot } from '../tools/config';
import { startNginx } from '../tools/nginx';
import { freePort } from '../tools/stack';
import { runLoad } from './load';
import { FEATURE_VARIANTS, PayloadId, PAYLOADS } from './scenarios';
import { preflight, renderPlain, startBenchMocks, startGateway } from './targets';

export interface InstructionsProfile {
  /** Gateway variants (FEATURE_VARIANTS ids) measured beside plain nginx. */
  variants: string[];
  /** Payload and measured requests per target (warm-up: a tenth, at least 10). */
  cells: { payload: PayloadId; requests: number }[];
  /** Also count the njs floor (FLOORS: trivial handlers in the gateway's shape) beside plain nginx. */
  floor?: boolean;
}

export interface InstructionRow {
  payload: PayloadId;
  /** 'plain' or a gateway variant id. */
  target: string;
  label: string;
  requests: number;
  instructionsPerRequest: number;
  /** instructionsPerRequest ÷ plain nginx's for the same payload. */
  vsPlain: number | null;
  /** Wall time of the counted window, s. */
  windowS?: number;
  /** Instructions per second of the idle gateway (clock-driven work), subtracted over windowS. */
  backgroundPerS?: number;
}

export interface InstructionsReport {
  tool: string;
  /** nginx, njs and engine the counts are for (absent in older reports): counts compare only within one build. */
  build?: string;
  /** The njs version the gateway reported (its /v1/metadata). */
  njs?: string;
  rows: InstructionRow[];
  skipped: string | null;
  broken: string[];
}

/**
 * What each feature costs, as differences between variants of one payload (instructions per request):
 * a feature is the all-on gateway minus the variant that switches it off; the token rows are the
 * variant minus the all-on gateway (a token checked instead of the API key); routing is the
 * routing-only gateway minus plain nginx. Rows whose variants were not both measured are left out.
 */
export interface FeatureInstructions {
  payload: PayloadId;
  feature: string;
  /** How it is derived, e.g. "all − no-auth". */
  from: string;
  instructions: number;
}

const FEATURE_DIFFS: { feature: string; plus: string; minus: string }[] = [
  { feature: 'njs floor: one VM, a js_set, a js_body_filter and a log-phase js_set doing nothing', plus: 'floor-1vm', minus: 'plain' },
  { feature: 'njs floor: the gateway\'s shape (+ js_content reading the body, internalRedirect, a second VM)', plus: 'floor-2vm', minus: 'plain' },
  { feature: 'the second VM and the internal redirect alone', plus: 'floor-2vm', minus: 'floor-1vm' },
  { feature: 'one VM with js_access reading the body instead of the gateway\'s shape', plus: 'floor-access', minus: 'floor-2vm' },
  { feature: 'the gateway\'s own work over the njs floor (its code, zones, maps, log line)', plus: 'all', minus: 'floor-2vm' },
  { feature: 'routing (+ the VMs, the njs floor)', plus: 'routing-only', minus: 'plain' },
  { feature: 'API keys + rate limit', plus: 'all', minus: 'no-auth' },
  { feature: 'per-model queue', plus: 'all', minus: 'no-queue' },
  { feature: 'JSON access log, usage body filter + ledger, metrics', plus: 'all', minus: 'no-logs' },
  { feature: 'HS256 token instead of the API key', plus: 'jwt-hs256', minus: 'all' },
  { feature: 'RS256 token (JWKS) instead of the API key', plus: 'jwt-rs256', minus: 'all' },
];

/**
 * The njs floor: plain nginx's config with bench/njs/floor.js's do-nothing handlers hooked in where the
 * gateway hooks its own, so what njs's request model costs by itself is counted in the same run.
 */
export const FLOORS: { id: string; label: string; location: (upstream: string) => string; needs?: string }[] = [
  {
    id: 'floor-1vm',
    label: 'njs floor: one VM, do-nothing js_set + js_body_filter + log-phase js_set',
    location: (up) => `location / {\n            if ($floor_auth != ok) { return 500; }\n            js_body_filter floor.filter;\n            proxy_pass http://${up};\n        }`,
  },
  {
    id: 'floor-2vm',
    label: 'njs floor: the gateway\'s shape (js_set, js_content reading the body + internalRedirect, then js_body_filter + log-phase js_set in a second VM)',
    location: (up) => `location / {\n            if ($floor_auth != ok) { return 500; }\n            js_content floor.route;\n        }\n        location @floor_upstream {\n            js_body_filter floor.filter;\n            proxy_pass http://${up};\n        }`,
  },
  {
    id: 'floor-access',
    label: 'njs floor, one VM with js_access reading the body (njs >= 0.9.9): js_set, js_access + proxy_pass, js_body_filter + log-phase js_set',
    location: (up) => `location / {\n            if ($floor_auth != ok) { return 500; }\n            js_access floor.access;\n            js_body_filter floor.filter;\n            proxy_pass http://${up};\n        }`,
    needs: 'js_access',
  },
];

/** renderPlain's config with one FLOORS shape in the server{} of `upstream`, floor.js copied into `prefix`. */
export function renderFloor(plainConf: string, prefix: string, rt: NginxRuntime, upstream: string, floor: (typeof FLOORS)[number]): string {
  copyFileSync(join(projectRoot, 'bench/njs/floor.js'), join(prefix, 'floor.js'));
  const plainLocation = `location / {\n            proxy_pass http://${upstream};\n        }`;
  if (!plainConf.includes(plainLocation)) throw new Error(`instructions: the plain config has no location for ${upstream} to hook the njs floor into`);
  const http = [
    ...(rt.jsEngine ? [`js_engine ${rt.jsEngine};`] : []),
    `js_path ${prefix};`,
    'js_import floor from floor.js;',
    'js_set $floor_auth floor.auth;',
    'js_set $floor_end floor.end;',
    "log_format floor_null '';",
  ].map((l) => `    ${l}\n`).join('');
  const conf = plainConf
    .replace(plainLocation, `access_log /dev/null floor_null if=$floor_end;\n        ${floor.location(upstream)}`)
    .replace(/^http \{\n/m, (h) => h + http);
  return (rt.jsModule ? `load_module ${rt.jsModule};\n` : '') + conf;
}

export function featureInstructions(rows: InstructionRow[]): FeatureInstructions[] {
  const out: FeatureInstructions[] = [];
  const payloads = rows.map((r) => r.payload).filter((p, i, a) => a.indexOf(p) === i);
  for (const payload of payloads) {
    const ir = (target: string) => rows.find((r) => r.payload === payload && r.target === target)?.instructionsPerRequest;
    for (const d of FEATURE_DIFFS) {
      const a = ir(d.plus), b = ir(d.minus);
      if (a !== undefined && b !== undefined) out.push({ payload, feature: d.feature, from: `${d.plus} − ${d.minus}`, instructions: a - b });
    }
    const all = ir('all'), floor = ir('routing-only');
    const parts = ['no-auth', 'no-queue', 'no-logs'].map((v) => ir(v));
    if (all !== undefined && floor !== undefined && parts.every((x) => x !== undefined)) {
      // Features that cost more together than apart (or less) show here; 0 when they add up.
      const sum = parts.reduce((acc, x) => acc + (all - (x as number)), 0);
      out.push({ payload, feature: 'not additive (all − routing-only − the three features above)', from: 'all − routing-only − Σ', instructions: all - floor - sum });
    }
  }
  return out;
}

/** The njs version a gateway runs (its /v1/metadata), or null when it does not say. */
async function njsVersion(url: string, headers: Record<string, string>): Promise<string | null> {
  try {
    const res = await fetch(`${url}/v1/metadata`, { headers });
    const doc = (await res.json()) as { gateway?: { njs?: unknown } };
    return typeof doc.gateway?.njs === 'string' ? doc.gateway.njs : null;
  } catch {
    return null;
  }
}

/**
 * One target's measurement, tried a second time when the first fails: on a loaded machine a
 * callgrind run has been seen to end with no count (a dump without totals) although the requests
 * were served; a second failure is reported.
 */
async function twice<T>(what: string, log: (m: string) => void, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    log(`instructions ${what}: ${(e as Error).message.split('\n')[0]}; trying once more`);
    return fn();
  }
}

/** callgrind writes its counts when nginx exits; a SIGKILL before that loses them. */
const EXIT_GRACE_MS = 60_000;

function valgrindVersion(): string | null {
  const v = spawnSync('valgrind', ['--version'], { encoding: 'utf8' });
  const c = spawnSync('callgrind_control', ['-h'], { encoding: 'utf8' });
  if (v.status !== 0 || c.error) return null;
  return v.stdout.trim();
}

/** One process serves everything, so one callgrind process sees every request. */
export function singleProcess(conf: string): string {
  if (!/^worker_processes \S+;$/m.test(conf)) throw new Error('instructions: the config has no top-level worker_processes line to replace');
  return conf.replace(/^worker_processes \S+;$/m, 'worker_processes 1;\nmaster_process off;');
}

function callgrindRuntime(rt: NginxRuntime, dir: string): NginxRuntime {
  const wrapper = join(dir, 'nginx-callgrind');
  // --trace-children: the provisioned nginx is a shell script that execs trixie's loader.
  writeFileSync(wrapper, `#!/bin/sh\nexec valgrind --tool=callgrind --instr-atstart=no --trace-children=yes -q --callgrind-out-file='${dir}/callgrind.%p' '${rt.bin}' "$@"\n`);
  chmodSync(wrapper, 0o755);
  return { ...rt, bin: wrapper };
}

/** Instrumentation on or off. */
function instrument(on: boolean, pid: number): void {
  callgrindControl(['-i', on ? 'on' : 'off'], pid);
}

/** callgrind_control exits 0 even when it found no run, so its words decide. */
function callgrindControl(args: string[], pid: number): void {
  const out = spawnSync('callgrind_control', [...args, String(pid)], { encoding: 'utf8' });
  const text = `${out.stdout}${out.stderr}`;
  if (out.status !== 0 || !/sending command/.test(text) || /No active callgrind runs/.test(text)) throw new Error(`callgrind_control ${args.join(' ')} ${pid}: ${text.trim()}`);
}

/** The "totals:" of each callgrind file of `pid`, by its "part:" (1 for the first dump, the exit's the last). */
function partTotals(dir: string, pid: number): Map<number, number> {
  const parts = new Map<number, number>();
  const seen: string[] = [];
  for (const f of readdirSync(dir).filter((n) => n === `callgrind.${pid}` || n.startsWith(`callgrind.${pid}.`))) {
    const text = readFileSync(join(dir, f), 'utf8');
    seen.push(`${f}: ${text.length} bytes, ${/^totals: \d+/m.exec(text)?.[0] ?? 'no totals line'}`);
    const m = /^totals: (\d+)/m.exec(text);
    const part = Number(/^part: (\d+)/m.exec(text)?.[1] ?? 1);
    if (m) parts.set(part, (parts.get(part) ?? 0) + Number(m[1]));
  }
  if (parts.size < (idleWindow() ? 2 : 1)) throw new Error(`expected ${idleWindow() ? 'an idle part and a measured part' : 'a measured part'} for pid ${pid} in ${dir} (did callgrind_control reach it?): ${seen.join('; ') || readdirSync(dir).join(' ')}`);
  return parts;
}

/** Writes what was counted so far to its own file and starts counting from zero. */
function dump(pid: number): void {
  callgrindControl(['-d'], pid);
}

/**
 * The idle window before the requests: the gateway's clock-driven work (health checks, js_periodic
 * jobs) per second, which the measured window also holds and which is not the requests' cost.
 */
const IDLE_MS = 5000;
/**
 * GW_BENCH_IDLE=off skips that window: nothing is subtracted, and the one callgrind file per run is
 * what callgrind_annotate reads right (a dump leaves the next part's per-function costs unusable).
 */
const idleWindow = (): boolean => process.env.GW_BENCH_IDLE !== 'off';

async function measure(o: { pid: number; stop: () => Promise<void>; dir: string; url: string; path: string; body: string; headers: Record<string, string>; requests: number }): Promise<{ perRequest: number; windowS: number; backgroundPerS: number }> {
  const load = (amount: number) => runLoad({ url: o.url, path: o.path, body: o.body, headers: o.headers, connections: 4, duration: 600, amount, timeout: 120 });
  const warm = await load(Math.max(10, Math.round(o.requests / 10)));
  if (warm.ok !== warm.completed || warm.completed === 0) throw new Error(`warm-up: statuses ${JSON.stringify(warm.statuses)}, ${warm.errors} errors`);
  const i0 = Date.now();
  instrument(true, o.pid);
  if (idleWindow()) {
    await new Promise((r) => setTimeout(r, IDLE_MS));
    dump(o.pid);
  }
  const idleS = (Date.now() - i0) / 1000;
  const t0 = Date.now();
  const res = await load(o.requests);
  instrument(false, o.pid);
  const windowS = (Date.now() - t0) / 1000;
  await o.stop();
  if (res.ok !== o.requests) throw new Error(`${res.ok} of ${o.requests} requests answered 2xx (statuses ${JSON.stringify(res.statuses)}, ${res.errors} errors)`);
  const parts = partTotals(o.dir, o.pid);
  const last = Math.max(...parts.keys());
  const backgroundPerS = idleWindow() ? (parts.get(1) ?? 0) / idleS : 0;
  return { perRequest: ((parts.get(last) ?? 0) - backgroundPerS * windowS) / o.requests, windowS, backgroundPerS };
}

export async function runInstructions(p: InstructionsProfile, rt: NginxRuntime, log: (m: string) => void): Promise<InstructionsReport> {
  const report: InstructionsReport = { tool: '', rows: [], skipped: null, broken: [] };
  const version = valgrindVersion();
  if (version === null) {
    report.skipped = 'valgrind (with callgrind_control) is not installed: apt-get install valgrind';
    log(`instructions: skipped, ${report.skipped}`);
    return report;
  }
  report.tool = `${version} --tool=callgrind`;
  let njs: string | null = null;
  const fleet = await startBenchMocks();
  const dir = mkdtempSync(join(tmpdir(), 'gw-bench-callgrind-'));
  chmodSync(dir, 0o777); // callgrind writes here as whatever user runs nginx
  const vrt = callgrindRuntime(rt, dir);
  try {
    for (const cell of p.cells) {
      const pl = PAYLOADS[cell.payload];
      const body = pl.body();
      let plainIr: number | null = null;
      // Plain nginx first: the floor every ratio divides by; then the njs floor, in the same config.
      const plainLike = (what: string, render: (prefix: string, ports: Record<string, number>) => string) =>
        twice(what, log, async () => {
          const port = await freePort();
          const prefix = mkdtempSync(join(tmpdir(), 'gw-bench-plain-cg-'));
          chmodSync(prefix, 0o755);
          const ports: Record<string, number> = {};
          for (const up of Object.keys(fleet.ports)) ports[up] = up === pl.upstream ? port : await freePort();
          const nginx = await startNginx(vrt, { prefix, conf: singleProcess(render(prefix, ports)), host: '127.0.0.1', port, env: NGINX_ENV });
          try {
            return await measure({ pid: nginx.pid, stop: () => nginx.stop(EXIT_GRACE_MS), dir, url: `http://127.0.0.1:${port}`, path: pl.path, body, headers: {}, requests: cell.requests });
          } finally {
            await nginx.stop();
            rmSync(prefix, { recursive: true, force: true });
          }
        });
      try {
        const m = await plainLike(`plain ${pl.id}`, (prefix, ports) => renderPlain(prefix, 1, fleet.ports, ports));
        plainIr = m.perRequest;
        report.rows.push({ payload: pl.id, target: 'plain', label: 'plain nginx (proxy_pass only)', requests: cell.requests, instructionsPerRequest: plainIr, vsPlain: 1, windowS: m.windowS, backgroundPerS: m.backgroundPerS });
        log(`instructions ${pl.label}: plain nginx ${Math.round(plainIr)} per request (${m.windowS.toFixed(1)} s window, idle ${Math.round(m.backgroundPerS)}/s subtracted)`);
      } catch (e) {
        report.broken.push(`instructions plain ${pl.id}: ${(e as Error).message}`);
      }
      for (const f of p.floor ? FLOORS : []) {
        try {
          const m = await plainLike(`${f.id} ${pl.id}`, (prefix, ports) => renderFloor(renderPlain(prefix, 1, fleet.ports, ports), prefix, rt, pl.upstream, f));
          const ir = m.perRequest;
          report.rows.push({ payload: pl.id, target: f.id, label: f.label, requests: cell.requests, instructionsPerRequest: ir, vsPlain: plainIr ? ir / plainIr : null, windowS: m.windowS, backgroundPerS: m.backgroundPerS });
          log(`instructions ${pl.label}: ${f.id} ${Math.round(ir)} per request${plainIr ? ` (${(ir / plainIr).toFixed(1)}x plain)` : ''}`);
        } catch (e) {
          const msg = (e as Error).message;
          // A shape this njs cannot load is not a broken run: it is what this build does not have.
          if (f.needs && msg.includes(`unknown directive "${f.needs}"`)) log(`instructions: ${f.id} skipped, this njs has no ${f.needs}`);
          else report.broken.push(`instructions ${f.id} ${pl.id}: ${msg}`);
        }
      }
      for (const id of p.variants) {
        const v = FEATURE_VARIANTS.find((x) => x.id === id);
        if (!v) throw new Error(`instructions: unknown variant ${id}`);
        try {
          const m = await twice(`gateway ${v.id} ${pl.id}`, log, async () => {
            const g = await startGateway(fleet, { workers: 1, variant: v, rt: vrt, patch: singleProcess });
            try {
              const bad = await preflight(g.stack.url, pl.path, body, g.headers, pl.upstream);
              if (bad) throw new Error(`preflight: ${bad}`);
              if (!njs) njs = await njsVersion(g.stack.url, g.headers);
              return await measure({ pid: g.stack.nginx.pid, stop: () => g.stack.nginx.stop(EXIT_GRACE_MS), dir, url: g.stack.url, path: pl.path, body, headers: g.headers, requests: cell.requests });
            } finally {
              await g.stack.stop();
            }
          });
          const ir = m.perRequest;
          report.rows.push({ payload: pl.id, target: v.id, label: `gateway, ${v.label}`, requests: cell.requests, instructionsPerRequest: ir, vsPlain: plainIr ? ir / plainIr : null, windowS: m.windowS, backgroundPerS: m.backgroundPerS });
          log(`instructions ${pl.label}: gateway ${v.id} ${Math.round(ir)} per request${plainIr ? ` (${(ir / plainIr).toFixed(1)}x plain)` : ''}, ${m.windowS.toFixed(1)} s window, idle ${Math.round(m.backgroundPerS)}/s subtracted`);
        } catch (e) {
          report.broken.push(`instructions gateway ${v.id} ${pl.id}: ${(e as Error).message}`);
        }
      }
    }
    if (njs) report.njs = njs;
    report.build = `nginx ${rt.version}${rt.suite ? ` (Debian ${rt.suite})` : ''}, njs ${njs ?? '?'}, ${rt.jsEngine ?? 'njs'} engine`;
    log(`instructions counted on ${report.build}`);
    for (const x of featureInstructions(report.rows)) log(`instructions ${PAYLOADS[x.payload].label}: ${x.feature} ${Math.round(x.instructions)} per request (${x.from})`);
  } finally {
    await fleet.stop();
    // GW_BENCH_KEEP_CALLGRIND=1 keeps the callgrind files for callgrind_annotate (where the instructions go;
    // with GW_BENCH_IDLE=off, or the per-function costs of the measured part are unusable).
    if (process.env.GW_BENCH_KEEP_CALLGRIND) log(`instructions: callgrind files kept in ${dir}`);
    else if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
  }
  return report;
}

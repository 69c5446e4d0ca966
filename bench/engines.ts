/**
 * `npm run bench:engines`: the gateway on each njs engine and version the CI matrix runs, side by side:
 *   trixie nginx 1.26 + njs 0.8.9 (njs engine), sid nginx 1.30 + njs 1.0.x with the njs engine, and
 *   with js_engine qjs at js_context_reuse's default (128) and at 0 (a QuickJS context per request).
 * Per configuration: instructions per request under callgrind (bench/instructions.ts: plain nginx and
 * the gateway with every feature on, small chat) and req/s of the gateway and of plain nginx on the
 * same machine, interleaved, so the gateway/plain ratio is comparable across configurations even on a
 * noisy box. Each configuration runs in a child process with its own GW_NGINX_SUITE / GW_JS_ENGINE /
 * GW_JS_CONTEXT_REUSE (the switches tests and `npm start` use), so findNginx proves each one.
 * Writes bench/results/engines-<time>.json and prints the markdown table docs/benchmarks-engines.md
 * carries.
 * Flags: --requests N (callgrind, default 300)  --seconds S (per load round, default 4)  --rounds R (default 3)
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../tools/config';
import { findNginx } from '../tools/findNginx';
import { runInstructions } from './instructions';
import { median, runLoad } from './load';
import { PAYLOADS } from './scenarios';
import { startTargets } from './targets';

interface Config { id: string; label: string; env: Record<string, string>; /** callgrind requests, when fewer than --requests. */ requests?: number }

const CONFIGS: Config[] = [
  { id: 'trixie-njs', label: 'nginx 1.26.3 + njs 0.8.9, njs engine', env: { GW_NGINX_SUITE: 'trixie' } },
  { id: 'sid-njs', label: 'nginx 1.30 + njs 1.0.x, njs engine', env: { GW_NGINX_SUITE: 'sid' } },
  { id: 'sid-qjs', label: 'nginx 1.30 + njs 1.0.x, js_engine qjs (js_context_reuse 128, default)', env: { GW_NGINX_SUITE: 'sid', GW_JS_ENGINE: 'qjs' } },
  { id: 'sid-qjs-reuse0', label: 'nginx 1.30 + njs 1.0.x, js_engine qjs, js_context_reuse 0', env: { GW_NGINX_SUITE: 'sid', GW_JS_ENGINE: 'qjs', GW_JS_CONTEXT_REUSE: '0' },
    // A QuickJS context per request is so slow under callgrind's instrumentation that a long window
    // makes the health checks (js_fetch_timeout 1s) time out and the gateway answer 503: fewer requests.
    requests: 60 },
];

export interface EngineRow {
  id: string;
  label: string;
  nginx: string;
  plainIr: number | null;
  gatewayIr: number | null;
  gatewayRps: number;
  plainRps: number;
  broken: string[];
}

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

const log = (m: string) => process.stderr.write(`[engines] ${m}\n`);

/** Child: measure the configuration the environment selects; print one JSON line. */
async function child(id: string): Promise<void> {
  const cfg = CONFIGS.find((c) => c.id === id)!;
  const rt = findNginx({ quiet: true });
  const row: EngineRow = { id, label: cfg.label, nginx: rt.version, plainIr: null, gatewayIr: null, gatewayRps: 0, plainRps: 0, broken: [] };
  const ir = await runInstructions({ variants: ['all'], cells: [{ payload: 'chat', requests: Math.min(arg('requests', 300), cfg.requests ?? Infinity) }] }, rt, log);
  row.broken.push(...ir.broken);
  if (ir.skipped) row.broken.push(`instructions skipped: ${ir.skipped}`);
  row.plainIr = ir.rows.find((r) => r.target === 'plain')?.instructionsPerRequest ?? null;
  row.gatewayIr = ir.rows.find((r) => r.target === 'all')?.instructionsPerRequest ?? null;

  const pl = PAYLOADS.chat;
  const body = pl.body();
  const t = await startTargets(rt, { workers: 1 });
  try {
    const gw: number[] = [];
    const plain: number[] = [];
    for (let i = 0; i < arg('rounds', 3); i++) {
      for (const target of ['plain', 'gateway'] as const) {
        const res = await runLoad({ url: t.baseUrl(target, pl.upstream), path: pl.path, body, headers: t.headers(target), connections: 8, duration: arg('seconds', 4) });
        if (res.ok !== res.completed) row.broken.push(`${target}: ${res.completed - res.ok} non-2xx (${JSON.stringify(res.statuses)})`);
        (target === 'plain' ? plain : gw).push(res.okRps);
      }
    }
    row.gatewayRps = median(gw);
    row.plainRps = median(plain);
    row.broken.push(...t.badLogLines());
  } finally {
    await t.stop();
  }
  process.stdout.write(`ENGINE_ROW ${JSON.stringify(row)}\n`);
}

function fmtK(n: number | null): string {
  return n === null ? 'n/a' : `${(n / 1000).toFixed(1)}k`;
}

export function engineTable(rows: EngineRow[]): string {
  const base = rows.find((r) => r.id === 'trixie-njs');
  const lines = [
    '| configuration | nginx | instructions / request, gateway (all features, small chat) | plain nginx | gateway ÷ plain | gateway req/s (1 worker, c=8) | gateway req/s ÷ plain req/s | instructions vs njs 0.8.9 |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const ratio = r.gatewayIr && r.plainIr ? (r.gatewayIr / r.plainIr).toFixed(1) + '×' : 'n/a';
    const rel = r.gatewayIr && base?.gatewayIr ? ((r.gatewayIr / base.gatewayIr) * 100).toFixed(0) + ' %' : 'n/a';
    const rps = r.plainRps ? (r.gatewayRps / r.plainRps).toFixed(2) : 'n/a';
    lines.push(`| ${r.label} | ${r.nginx} | ${fmtK(r.gatewayIr)} | ${fmtK(r.plainIr)} | ${ratio} | ${Math.round(r.gatewayRps)} | ${rps} | ${rel} |`);
  }
  const broken = rows.filter((r) => r.broken.length);
  for (const r of broken) lines.push('', `${r.id}: ${r.broken.join('; ')}`);
  return lines.join('\n');
}

async function parent(): Promise<void> {
  const only = process.argv.indexOf('--only') >= 0 ? process.argv[process.argv.indexOf('--only') + 1].split(',') : null;
  const rows: EngineRow[] = [];
  for (const c of CONFIGS) {
    if (only && only.indexOf(c.id) < 0) continue;
    log(`${c.id}: ${c.label}`);
    const out = spawnSync(process.execPath, [...process.execArgv, process.argv[1], '--child', c.id, ...process.argv.slice(2)], {
      env: { ...process.env, GW_NGINX_SUITE: '', GW_JS_ENGINE: '', GW_JS_CONTEXT_REUSE: '', ...c.env },
      encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20,
    });
    const m = /^ENGINE_ROW (.*)$/m.exec(out.stdout ?? '');
    if (!m) {
      rows.push({ id: c.id, label: c.label, nginx: '?', plainIr: null, gatewayIr: null, gatewayRps: 0, plainRps: 0, broken: [`child exited ${out.status}: ${(out.stdout ?? '').slice(-500)}`] });
      continue;
    }
    rows.push(JSON.parse(m[1]) as EngineRow);
  }
  const dir = join(projectRoot, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `engines-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ time: new Date().toISOString(), rows }, null, 1));
  process.stdout.write(`${engineTable(rows)}\n\n(${file})\n`);
  if (rows.some((r) => r.broken.length)) process.exitCode = 1;
}

const ci = process.argv.indexOf('--child');
if (ci >= 0) await child(process.argv[ci + 1]);
else await parent();

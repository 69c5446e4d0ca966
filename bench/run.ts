/**
 * `npm run bench` (profile full) / `npm run bench:ci` (profile ci, < 3 minutes): the load-test suite.
 *
 * One run starts mock vLLM backends (own process), plain nginx (proxy_pass only) and the gateway
 * (nginx.conf.example + the njs bundle, features from scenarios.ts), checks every target with one
 * request per payload, then drives them with autocannon, targets interleaved round by round so a noisy
 * neighbour hits all of them alike; medians are reported. Then the overload scenario, the
 * model-extraction micro-benchmark, and (GW_BENCH_URL set) the real target.
 * Writes bench/results/<timestamp>.{json,md,svg}; prints the markdown.
 *
 * Flags: --profile full|ci   --only main,overload,features,memory,instructions,extract,real,llama   --cells chat,ocr-2m   --update-baseline   --out <dir>
 *   --publish: also write bench/latest.json, the snapshot docs/benchmarks.md is generated from (`npm run bench:docs`)
 * Exit status: 1 only for a broken bench (errors, unexpected non-2xx, a failed preflight, an nginx
 * alert); timing never fails a run, the regression check against bench/baseline.json only warns.
 */
import * as esbuild from 'esbuild';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { ocrBody } from '../tools/clients';
import { projectRoot } from '../tools/config';
import { findNginx } from '../tools/findNginx';
import { sleep } from '../tools/nginx';
import { runExtract } from './extract';
import { runInstructions } from './instructions';
import { runLlama } from './llama';
import { LoadResult, medianResult, runLoad } from './load';
import { runMemory } from './memory';
import { ocrPngBody } from './png';
import { politeLoad } from './politeLoad';
import {
  Baseline, BenchReport, CellResult, compare, FeatureCost, goals, instructionRegressions, makeBaseline, markdown, Meta, OverloadResult, RealResult, regressions,
  svgChart,
} from './report';
import {
  BACKENDS, FEATURE_VARIANTS, GATEWAY_FEATURES, GatewayVariant, OVERLOAD, PAYLOADS, PayloadId, Profile, PROFILES, realTarget, TARGETS, TargetId,
} from './scenarios';
import { preflight, startGateway, startTargets, Targets } from './targets';
import { childPids } from './procstat';
import type { Stack } from '../tools/stack';

const WORKERS = 2;
const STAGES = ['main', 'overload', 'features', 'memory', 'instructions', 'extract', 'real', 'llama'] as const;
type Stage = (typeof STAGES)[number];

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const profile: Profile = PROFILES[(arg('profile') ?? 'full') as 'full' | 'ci'];
if (!profile) throw new Error(`unknown --profile ${arg('profile')} (full | ci)`);
const only = arg('only')?.split(',') as Stage[] | undefined;
// --cells chat,ocr-2m: measure only these payloads of the profile (a quick look at one number).
const cellFilter = arg('cells')?.split(',');
if (cellFilter) profile.cells = profile.cells.filter((c) => cellFilter.includes(c.payload));
const runs = (s: Stage) => !only || only.includes(s);
const outDir = arg('out') ?? join(projectRoot, 'bench/results');
const baselinePath = join(projectRoot, 'bench/baseline.json');
const latestPath = join(projectRoot, 'bench/latest.json');
const started = Date.now();
const log = (m: string) => process.stderr.write(`[bench ${((Date.now() - started) / 1000).toFixed(0).padStart(3)}s] ${m}\n`);

function sh(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { cwd: projectRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

function meta(nginxVersion: string): Meta {
  const os = existsSync('/etc/os-release') ? (/^PRETTY_NAME="?([^"\n]*)/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? 'linux') : process.platform;
  const dirty = sh('git', ['status', '--porcelain', '--untracked-files=no']) !== '' ? '+dirty' : '';
  const pkg = (p: string) => (JSON.parse(readFileSync(join(projectRoot, 'node_modules', p, 'package.json'), 'utf8')) as { version: string }).version;
  const groups = (JSON.parse(readFileSync(join(projectRoot, 'njs/handlers.json'), 'utf8')) as { groups: Record<string, string[]> }).groups;
  const handlers = Object.values(groups).flat();
  return {
    time: new Date(started).toISOString(),
    profile: profile.name,
    machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, memGb: totalmem() / 2 ** 30, kernel: release(), os, loadavgAtStart: loadavg() },
    versions: {
      commit: `${sh('git', ['rev-parse', '--short', 'HEAD'])}${dirty}`, node: process.version, nginx: nginxVersion, njs: 'see extraction',
      autocannon: pkg('autocannon'), esbuild: esbuild.version,
    },
    settings: {
      workers: WORKERS, duration_s: profile.duration, warmup_s: profile.warmup, rounds: profile.rounds,
      backends: BACKENDS, gateway_features: GATEWAY_FEATURES.on, gateway_handlers: handlers.join(' '),
      load: 'autocannon in the bench process; mocks in their own Node process; nginx master + workers',
    },
  };
}

async function mainStage(t: Targets, broken: string[]): Promise<CellResult[]> {
  // Preflight: every payload through every target, answered by the right backend, body intact.
  const bad = new Set<string>();
  for (const cell of profile.cells) {
    const p = PAYLOADS[cell.payload];
    const body = p.body();
    for (const target of TARGETS) {
      const err = await preflight(t.baseUrl(target, p.upstream), p.path, body, t.headers(target), p.upstream);
      if (err) {
        broken.push(`preflight ${p.id} → ${target}: ${err}`);
        bad.add(`${p.id}|${target}`);
      }
    }
  }
  const cells: CellResult[] = [];
  for (const cell of profile.cells) {
    const p = PAYLOADS[cell.payload];
    const body = p.body();
    for (const c of cell.connections) {
      const targets = TARGETS.filter((x) => !bad.has(`${p.id}|${x}`));
      const rounds: Partial<Record<TargetId, LoadResult[]>> = {};
      const backendInflight = p.countAtBackend ? async () => (await t.fleet.stats())[p.upstream]?.inflight ?? 0 : undefined;
      const spec = (target: TargetId, duration: number) => ({
        url: t.baseUrl(target, p.upstream), path: p.path, body, headers: t.headers(target), connections: c, duration,
        serverPids: () => t.workerPids(target), backendPids: [t.fleet.pid], backendInflight,
      });
      for (const target of targets) await runLoad(spec(target, profile.warmup));
      for (let round = 0; round < profile.rounds; round++) {
        // Rotate the order each round: whoever runs first or last does not always get the same neighbours.
        const order = targets.slice(round % targets.length).concat(targets.slice(0, round % targets.length));
        for (const target of order) {
          const r = await runLoad(spec(target, profile.duration));
          if (r.errors || r.timeouts || r.non2xx || r.ok === 0) {
            broken.push(`${p.id} c=${c} → ${target}: ${r.errors} errors, ${r.timeouts} timeouts, statuses ${JSON.stringify(r.statuses)}`);
          }
          (rounds[target] ??= []).push(r);
        }
      }
      const byTarget: CellResult['byTarget'] = {};
      for (const target of targets) byTarget[target] = medianResult(rounds[target]!);
      cells.push({ payload: p.id as PayloadId, label: p.label, connections: c, pages: p.pages, byTarget });
      const g = byTarget.gateway, pl = byTarget.plain;
      log(`${p.label} c=${c}: direct ${byTarget.direct?.rps.toFixed(0)} plain ${pl?.rps.toFixed(0)} gateway ${g?.rps.toFixed(0)} req/s`
        + (g && pl ? `, gateway/plain ${(g.rps / pl.rps).toFixed(3)}, p50 ${pl.latency.p50.toFixed(3)} → ${g.latency.p50.toFixed(3)} ms, p99 ${pl.latency.p99.toFixed(2)} → ${g.latency.p99.toFixed(2)} ms` : '')
        + (g?.backendInflight ? `; open at once (client/backend median): plain ${pl?.meanInflight.toFixed(0)}/${pl?.backendInflight?.median.toFixed(0)}, gateway ${g.meanInflight.toFixed(0)}/${g.backendInflight.median.toFixed(0)}` : ''));
    }
  }
  return cells;
}

/** Gateway variants with features switched off vs the all-on gateway and plain nginx, same run. */
async function featureStage(t: Targets, broken: string[]): Promise<FeatureCost> {
  const out: FeatureCost = { plain: [], rows: [], skipped: [] };
  const variants: { v: GatewayVariant; stack: Stack; headers: Record<string, string> }[] = [];
  try {
    for (const v of FEATURE_VARIANTS) {
      if (v.id === 'all') {
        variants.push({ v, stack: t.gateway, headers: t.headers('gateway') });
        continue;
      }
      try {
        const g = await startGateway(t.fleet, { workers: t.workers, variant: v });
        variants.push({ v, ...g });
      } catch (e) {
        out.skipped.push(`${v.id}: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
      }
    }
    for (const cell of profile.features) {
      const p = PAYLOADS[cell.payload];
      const body = p.body();
      for (const c of cell.connections) {
        type Runner = { id: string; run: (d: number) => Promise<LoadResult> };
        const runners: Runner[] = [{ id: 'plain', run: (d) => runLoad({ url: t.baseUrl('plain', p.upstream), path: p.path, body, connections: c, duration: d, serverPids: () => t.workerPids('plain') }) }];
        for (const x of variants) {
          const err = await preflight(x.stack.url, p.path, body, x.headers, p.upstream);
          if (err) {
            broken.push(`preflight features ${x.v.id} ${p.id}: ${err}`);
            continue;
          }
          runners.push({ id: x.v.id, run: (d) => runLoad({ url: x.stack.url, path: p.path, body, headers: x.headers, connections: c, duration: d, serverPids: () => childPids(x.stack.nginx.pid) }) });
        }
        for (const r of runners) await r.run(profile.warmup);
        const rounds: Record<string, LoadResult[]> = {};
        for (let round = 0; round < profile.rounds; round++) {
          const order = runners.slice(round % runners.length).concat(runners.slice(0, round % runners.length));
          for (const r of order) {
            const res = await r.run(profile.duration);
            if (res.errors || res.timeouts || res.non2xx || res.ok === 0) broken.push(`features ${r.id} ${p.id} c=${c}: ${res.errors} errors, statuses ${JSON.stringify(res.statuses)}`);
            (rounds[r.id] ??= []).push(res);
          }
        }
        const plain = medianResult(rounds.plain);
        out.plain.push({ payload: p.id, connections: c, result: plain });
        for (const x of variants) {
          if (!rounds[x.v.id]) continue;
          const m = medianResult(rounds[x.v.id]);
          out.rows.push({ payload: p.id, label: p.label, connections: c, variant: x.v.id, variantLabel: x.v.label, result: m, throughputRatio: m.rps / plain.rps });
        }
        log(`features ${p.label} c=${c}: ${out.rows.filter((x) => x.payload === p.id && x.connections === c).map((x) => `${x.variant} ${x.throughputRatio.toFixed(2)}`).join(', ')} (÷ plain)`);
      }
    }
    for (const x of variants) {
      if (x.v.id === 'all') continue;
      const bad = x.stack.nginx.errorLog().split('\n').filter((l) => /\[alert\]|\[emerg\]|exited on signal|js exception/.test(l));
      if (bad.length) broken.push(`features ${x.v.id} nginx error.log: ${bad.slice(0, 3).join(' | ')}`);
    }
  } finally {
    for (const x of variants) if (x.v.id !== 'all') await x.stack.stop();
  }
  return out;
}

async function drain(t: Targets, upstream: string): Promise<void> {
  const end = Date.now() + 20_000;
  while (Date.now() < end) {
    const s = (await t.fleet.stats())[upstream];
    if (!s || s.inflight === 0) {
      await sleep(300);
      const again = (await t.fleet.stats())[upstream];
      if (!again || again.inflight === 0) return;
    }
    await sleep(200);
  }
}

async function overloadStage(t: Targets, broken: string[]): Promise<OverloadResult> {
  const body = ocrBody(OVERLOAD.model, Math.round((OVERLOAD.imageKb * 1024 * 3) / 4), { modelLast: true });
  const offered = OVERLOAD.capacity * OVERLOAD.factor;
  const byTarget: OverloadResult['byTarget'] = {};
  for (const target of ['plain', 'gateway'] as const) {
    const err = await preflight(t.baseUrl(target, OVERLOAD.upstream), '/v1/chat/completions', body, t.headers(target), OVERLOAD.upstream);
    if (err) {
      broken.push(`preflight overload → ${target}: ${err}`);
      continue;
    }
    await drain(t, OVERLOAD.upstream);
    const r = await runLoad({
      url: t.baseUrl(target, OVERLOAD.upstream), path: '/v1/chat/completions', body, headers: t.headers(target),
      connections: OVERLOAD.connections, duration: profile.overload.duration, overallRate: offered, timeout: 60,
      serverPids: () => t.workerPids(target), backendPids: [t.fleet.pid],
    });
    const allowed = new Set([200, ...(target === 'gateway' ? OVERLOAD.allowedStatuses : [])].map(String));
    const unexpected = Object.keys(r.statuses).filter((s) => !allowed.has(s));
    if (r.errors || r.timeouts || unexpected.length || r.ok === 0) {
      broken.push(`overload → ${target}: ${r.errors} errors, ${r.timeouts} timeouts, statuses ${JSON.stringify(r.statuses)}`);
    }
    byTarget[target] = medianResult([r]);
    log(`overload → ${target}: ${r.okRps.toFixed(1)} completed/s, p50 ${r.latency.p50.toFixed(0)} ms, p99 ${r.latency.p99.toFixed(0)} ms, statuses ${JSON.stringify(r.statuses)}`);
  }
  await drain(t, OVERLOAD.upstream);
  const polite: OverloadResult['polite'] = {};
  for (const target of ['plain', 'gateway'] as const) {
    const p = await politeLoad({ url: `${t.baseUrl(target, OVERLOAD.upstream)}/v1/chat/completions`, body, headers: t.headers(target),
      clients: OVERLOAD.politeClients, durationS: profile.overload.duration });
    if (p.errors || Object.keys(p.other).length || p.completed === 0) broken.push(`overload (polite) → ${target}: ${p.errors} errors, statuses ${JSON.stringify(p.other)}`);
    polite[target] = p;
    log(`overload, polite clients → ${target}: ${p.completedPerS.toFixed(1)} completed/s, p50 ${p.latency.p50} ms, p99 ${p.latency.p99} ms, ${p.refused} × 429`);
    await drain(t, OVERLOAD.upstream);
  }
  const limits = GATEWAY_FEATURES.models[OVERLOAD.model] ?? {};
  const be = BACKENDS[OVERLOAD.upstream];
  return {
    capacityRps: OVERLOAD.capacity, offeredRps: offered, connections: OVERLOAD.connections, durationS: profile.overload.duration,
    backend: { maxConcurrency: be.maxConcurrency ?? 0, latencyMs: be.latencyMs ?? 0 },
    gatewayLimits: { max_inflight: limits.max_inflight, max_queue: limits.max_queue }, byTarget, polite,
  };
}

async function realStage(): Promise<RealResult | null> {
  const rt = realTarget();
  if (!rt) return null;
  const body = ocrPngBody(rt.model, rt.imageKb * 1024);
  const headers: Record<string, string> = rt.key ? { authorization: `Bearer ${rt.key}` } : {};
  const duration = Number(process.env.GW_BENCH_DURATION || profile.real.duration);
  const rows: RealResult['rows'] = [];
  for (const c of profile.real.connections) {
    let tokens = 0;
    let sawUsage = false;
    const r = await runLoad({
      url: rt.url, path: '/v1/chat/completions', body, headers, connections: c, duration, timeout: 600,
      onBody: (status, text) => {
        if (status !== 200) return;
        try {
          const u = (JSON.parse(text) as { usage?: { completion_tokens?: number } }).usage;
          if (u && typeof u.completion_tokens === 'number') {
            tokens += u.completion_tokens;
            sawUsage = true;
          }
        } catch { /* not JSON: no tokens counted */ }
      },
    });
    const m = medianResult([r]);
    rows.push({ connections: c, result: m, pagesPerSec: m.okRps, tokensPerSec: sawUsage ? tokens / m.durationS : null });
    log(`real ${rt.url} c=${c}: ${m.okRps.toFixed(2)} pages/s, ${sawUsage ? (tokens / m.durationS).toFixed(1) : 'n/a'} tokens/s, statuses ${JSON.stringify(m.statuses)}`);
  }
  return { url: rt.url, model: rt.model, imageKb: rt.imageKb, rows };
}

async function main(): Promise<number> {
  const rt = findNginx();
  const report: BenchReport = {
    meta: meta(`${rt.version}${rt.suite ? ` (Debian ${rt.suite})` : ""}${rt.jsEngine ? `, js_engine ${rt.jsEngine}` : ""}`), cells: [], comparisons: [], goals: [], overload: null, features: null, instructions: null, extract: null, real: null, llama: null, memory: null, regression: [], broken: [],
  };
  log(`profile ${profile.name}, stages ${(only ?? STAGES).join(',')}`);
  if (runs('main') || runs('overload') || (runs('features') && profile.features.length)) {
    const extraBackends = runs('main') ? profile.cells.map((c) => PAYLOADS[c.payload].upstream) : [];
    const t = await startTargets(rt, { workers: WORKERS, extraBackends });
    const stop = () => { void t.stop().then(() => process.exit(130)); };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    try {
      log(`targets up: gateway ${t.gateway.url}, plain nginx pid ${t.plain.pid}, mocks pid ${t.fleet.pid}`);
      if (runs('main')) report.cells = await mainStage(t, report.broken);
      if (runs('overload')) report.overload = await overloadStage(t, report.broken);
      if (runs('features') && profile.features.length) report.features = await featureStage(t, report.broken);
      const bad = t.badLogLines();
      if (bad.length) report.broken.push(`nginx error.log: ${bad.slice(0, 5).join(' | ')}`);
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      await t.stop();
    }
  }
  if (runs('memory') && profile.memory) report.memory = await runMemory(profile.memory, rt, WORKERS, log, report.broken);
  if (runs('instructions')) {
    report.instructions = await runInstructions(profile.instructions, rt, log);
    report.broken.push(...report.instructions.broken);
    if (report.instructions.njs) report.meta.versions.njs = report.instructions.njs;
  }
  if (runs('extract')) {
    report.extract = await runExtract(profile.extract, rt, log);
    report.meta.versions.njs = report.extract.njsVersion;
    report.broken.push(...report.extract.broken);
  }
  if (runs('real')) report.real = await realStage();
  if (runs('llama') && profile.llama) report.llama = await runLlama(profile.llama, rt, log, report.broken);

  report.comparisons = compare(report.cells);
  report.goals = goals(report.comparisons);
  const base = existsSync(baselinePath) ? (JSON.parse(readFileSync(baselinePath, 'utf8')) as Baseline) : null;
  report.regression = [...(report.cells.length ? regressions(report.comparisons, base) : []), ...instructionRegressions(report.instructions, base)];
  if (base && base.profile !== profile.name && report.regression.length === 0) report.regression.push(`baseline is from profile ${base.profile}; compared the rows both have`);

  mkdirSync(outDir, { recursive: true });
  const stamp = report.meta.time.replace(/[:.]/g, '-');
  const md = markdown(report);
  writeFileSync(join(outDir, `${stamp}.json`), JSON.stringify(report, null, 2));
  writeFileSync(join(outDir, `${stamp}.md`), md);
  if (report.cells.length) writeFileSync(join(outDir, `${stamp}.svg`), svgChart(report));
  if (process.argv.includes('--update-baseline')) {
    if (report.broken.length || !report.cells.length) log('not updating the baseline from a broken or partial run');
    else {
      writeFileSync(baselinePath, JSON.stringify(makeBaseline(report, base), null, 2) + '\n');
      log(`baseline written: ${baselinePath}`);
    }
  }
  if (process.argv.includes('--publish')) {
    // The docs show every stage of a whole profile: a partial or broken run would silently drop tables.
    if (report.broken.length || only || cellFilter) log('not publishing bench/latest.json from a broken or partial run (--only, --cells)');
    else {
      writeFileSync(latestPath, JSON.stringify(report, null, 2) + '\n');
      log(`published: ${latestPath}; now run npm run bench:docs and commit both`);
    }
  }
  process.stdout.write(`${md}\n`);
  for (const w of report.regression) log(`warning: ${w}`);
  log(`results: ${join(outDir, stamp)}.{json,md${report.cells.length ? ',svg' : ''}} (${((Date.now() - started) / 1000).toFixed(0)} s)`);
  if (report.broken.length) {
    log(`BROKEN BENCH:\n  ${report.broken.join('\n  ')}`);
    return 1;
  }
  return 0;
}

main().then((code) => process.exit(code), (e) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});

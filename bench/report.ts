import type { PoliteResult } from './politeLoad';
/**
 * The bench's outputs from one run's results: markdown tables, an SVG chart of latency vs load per
 * target, the comparison rows (gateway/plain ratios) and the regression check against a baseline.
 */
import type { ExtractResult } from './extract';
import { featureInstructions, InstructionsReport } from './instructions';
import { extractMarkdown } from './extract';
import { llamaMarkdown, LlamaResult } from './llama';
import type { LoadResult } from './load';
import type { MemoryResult } from './memory';
import { GOALS, INSTRUCTIONS_TOLERANCE, PACED, PayloadId, PAYLOADS, REGRESSION_TOLERANCE, TargetId } from './scenarios';

export type Measured = LoadResult & { rounds: number };

export interface CellResult {
  payload: PayloadId;
  label: string;
  connections: number;
  pages: number;
  byTarget: Partial<Record<TargetId, Measured>>;
}

export interface Comparison {
  key: string;
  payload: PayloadId;
  connections: number;
  /** gateway req/s ÷ plain req/s */
  throughputRatio: number;
  /** gateway p50 − plain p50, ms */
  addedP50Ms: number;
  addedP99Ms: number;
  /** gateway worker CPU per request ÷ plain worker CPU per request */
  cpuRatio: number | null;
  /** gateway − plain worker CPU per request, µs */
  addedCpuUs: number | null;
}

export interface OverloadResult {
  capacityRps: number;
  offeredRps: number;
  connections: number;
  durationS: number;
  backend: { maxConcurrency: number; latencyMs: number };
  gatewayLimits: { max_inflight?: number; max_queue?: number };
  byTarget: Partial<Record<'plain' | 'gateway', Measured>>;
  /** The same overload from clients that wait Retry-After on a 429 (bench/politeLoad.ts). */
  polite?: Partial<Record<'plain' | 'gateway', PoliteResult>>;
}

export interface FeatureCostRow {
  payload: PayloadId;
  label: string;
  connections: number;
  variant: string;
  variantLabel: string;
  result: Measured;
  /** variant req/s ÷ plain req/s, same cell */
  throughputRatio: number;
}

export interface FeatureCost {
  plain: { payload: PayloadId; connections: number; result: Measured }[];
  rows: FeatureCostRow[];
  skipped: string[];
}

export interface RealResult {
  url: string;
  model: string;
  imageKb: number;
  rows: { connections: number; result: Measured; pagesPerSec: number; tokensPerSec: number | null }[];
}

export interface Meta {
  time: string;
  profile: string;
  machine: { cpu: string; cores: number; memGb: number; kernel: string; os: string; loadavgAtStart: number[] };
  versions: Record<string, string>;
  settings: Record<string, unknown>;
}

export interface Goal {
  what: string;
  goal: string;
  measured: string;
  met: boolean | null;
}

export interface BenchReport {
  meta: Meta;
  cells: CellResult[];
  comparisons: Comparison[];
  goals: Goal[];
  overload: OverloadResult | null;
  features: FeatureCost | null;
  instructions: InstructionsReport | null;
  extract: ExtractResult | null;
  real: RealResult | null;
  /** llama.cpp's llama-server, direct vs gateway (bench/llama.ts); absent in older reports. */
  llama?: LlamaResult | null;
  /** Worker RSS with large bodies held inside nginx (bench/memory.ts); absent in older reports. */
  memory?: MemoryResult | null;
  regression: string[];
  broken: string[];
}

export interface Baseline {
  profile: string;
  commit: string;
  time: string;
  tolerance: number;
  ratios: Record<string, { throughputRatio: number; cpuRatio: number | null }>;
  /** Instructions per request ÷ plain nginx's, by "<payload> <variant>" (bench/instructions.ts). */
  instructions?: Record<string, number>;
  /** The nginx/njs/engine build those were counted on (InstructionsReport.build); other builds are not compared. */
  instructionsBuild?: string;
}

const f = (v: number | null | undefined, d = 1) => (v === null || v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(d));
const fs = (v: number | null | undefined, d = 2) => (v === null || v === undefined || !Number.isFinite(v) ? 'n/a' : `${v >= 0 ? '+' : ''}${v.toFixed(d)}`);

export function compare(cells: CellResult[]): Comparison[] {
  const out: Comparison[] = [];
  for (const c of cells) {
    const p = c.byTarget.plain, g = c.byTarget.gateway;
    if (!p || !g) continue;
    const cpuP = p.serverCpuMsPer1k, cpuG = g.serverCpuMsPer1k;
    out.push({
      key: `${c.payload} c=${c.connections}`, payload: c.payload, connections: c.connections,
      throughputRatio: g.rps / p.rps,
      addedP50Ms: g.latency.p50 - p.latency.p50,
      addedP99Ms: g.latency.p99 - p.latency.p99,
      cpuRatio: cpuP && cpuG ? cpuG / cpuP : null,
      addedCpuUs: cpuP !== null && cpuG !== null ? cpuG - cpuP : null, // ms per 1000 = µs per request
    });
  }
  return out;
}

/** The issue's goals, checked on this run's ratios (informational: never fails a run). */
export function goals(cmp: Comparison[]): Goal[] {
  const max = (payload: PayloadId) => cmp.filter((c) => c.payload === payload).sort((a, b) => b.connections - a.connections)[0];
  const min = (payload: PayloadId) => cmp.filter((c) => c.payload === payload).sort((a, b) => a.connections - b.connections)[0];
  const out: Goal[] = [];
  const chat = max('chat');
  if (chat) out.push({ what: `small chat throughput, gateway ÷ plain (${chat.key})`, goal: `≥ ${GOALS.chatThroughputRatio}`, measured: f(chat.throughputRatio, 3), met: chat.throughputRatio >= GOALS.chatThroughputRatio });
  const ocr = max('ocr-2m');
  if (ocr) out.push({ what: `2 MB OCR throughput, gateway ÷ plain (${ocr.key})`, goal: `≥ ${GOALS.ocr2mThroughputRatio}`, measured: f(ocr.throughputRatio, 3), met: ocr.throughputRatio >= GOALS.ocr2mThroughputRatio });
  const one = min('chat');
  if (one) out.push({ what: `small chat added p50 latency (${one.key})`, goal: `≤ ${GOALS.chatAddedP50Ms} ms`, measured: `${f(one.addedP50Ms, 3)} ms`, met: one.addedP50Ms <= GOALS.chatAddedP50Ms });
  const paced = max('chat-paced');
  if (paced) {
    out.push({ what: `streams at a model server's pace, throughput gateway ÷ plain (${paced.key}, issue 20)`, goal: `≥ ${GOALS.pacedThroughputRatio}`, measured: f(paced.throughputRatio, 3), met: paced.throughputRatio >= GOALS.pacedThroughputRatio });
    out.push({ what: `streams at a model server's pace, added p99 latency (${paced.key}, issue 20)`, goal: `≤ ${GOALS.pacedAddedP99Ms} ms`, measured: `${f(paced.addedP99Ms, 2)} ms`, met: paced.addedP99Ms <= GOALS.pacedAddedP99Ms });
  }
  return out;
}

/**
 * The baseline this run makes. Instruction rows the run did not count (the ci profile counts fewer
 * variants and payloads than the full one) are kept from `previous` when it is of the same build, so
 * updating from either profile keeps every row covered.
 */
export function makeBaseline(r: BenchReport, previous: Baseline | null = null): Baseline {
  const ratios: Baseline['ratios'] = {};
  for (const c of r.comparisons) ratios[c.key] = { throughputRatio: +c.throughputRatio.toFixed(4), cpuRatio: c.cpuRatio === null ? null : +c.cpuRatio.toFixed(4) };
  const build = r.instructions?.build ?? previous?.instructionsBuild;
  const keep = previous?.instructions && previous.instructionsBuild === build ? previous.instructions : {};
  const instructions: Record<string, number> = { ...keep };
  for (const x of r.instructions?.rows ?? []) if (x.target !== 'plain' && x.vsPlain !== null) instructions[`${x.payload} ${x.target}`] = +x.vsPlain.toFixed(3);
  const out: Baseline = { profile: r.meta.profile, commit: r.meta.versions.commit, time: r.meta.time, tolerance: REGRESSION_TOLERANCE, ratios, instructions };
  if (build) out.instructionsBuild = build;
  return out;
}

/** Warnings where the gateway's instructions per request (÷ plain nginx's) grew past INSTRUCTIONS_TOLERANCE. */
export function instructionRegressions(rep: InstructionsReport | null, base: Baseline | null): string[] {
  if (!rep || !base?.instructions) return [];
  // A count is exact for one nginx/njs/engine build only: another build's baseline says nothing.
  if (rep.build && base.instructionsBuild && rep.build !== base.instructionsBuild) {
    return [`instructions not compared: the baseline counted ${base.instructionsBuild}, this run ${rep.build}`];
  }
  const out: string[] = [];
  for (const x of rep.rows) {
    const b = base.instructions[`${x.payload} ${x.target}`];
    if (b === undefined || x.vsPlain === null) continue;
    if (x.vsPlain > b * (1 + INSTRUCTIONS_TOLERANCE)) {
      out.push(`${x.payload} ${x.target}: ${x.vsPlain.toFixed(2)}x plain nginx's instructions per request vs baseline ${b.toFixed(2)}x (more than ${INSTRUCTIONS_TOLERANCE * 100}% more)`);
    }
  }
  return out;
}

/** Warnings where a ratio moved past the tolerance against the baseline (ratios only, never times). */
export function regressions(cmp: Comparison[], base: Baseline | null): string[] {
  if (!base) return ['no baseline (bench/baseline.json): nothing compared'];
  const tol = base.tolerance ?? REGRESSION_TOLERANCE;
  const out: string[] = [];
  for (const c of cmp) {
    const b = base.ratios[c.key];
    if (!b) continue;
    if (c.throughputRatio < b.throughputRatio * (1 - tol)) {
      out.push(`${c.key}: gateway/plain throughput ${c.throughputRatio.toFixed(3)} vs baseline ${b.throughputRatio.toFixed(3)} (more than ${tol * 100}% lower)`);
    }
    if (c.cpuRatio !== null && b.cpuRatio !== null && c.cpuRatio > b.cpuRatio * (1 + tol)) {
      out.push(`${c.key}: gateway/plain worker CPU per request ${c.cpuRatio.toFixed(2)} vs baseline ${b.cpuRatio.toFixed(2)} (more than ${tol * 100}% higher)`);
    }
  }
  return out;
}

function statusText(m: Measured): string {
  return Object.entries(m.statuses).map(([k, v]) => `${k}:${v}`).join(' ');
}

/** The title, the machine, versions and settings, and what broke. */
function headerMd(r: BenchReport, out: string[]): void {
  const m = r.meta;
  out.push(`# Gateway benchmark, ${m.time} (profile ${m.profile})`);
  out.push('');
  out.push(`Machine: ${m.machine.cpu}, ${m.machine.cores} cores, ${f(m.machine.memGb, 0)} GB, ${m.machine.os}, kernel ${m.machine.kernel}, load average at start ${m.machine.loadavgAtStart.map((x) => x.toFixed(2)).join(' ')}.`);
  out.push(`Versions: ${Object.entries(m.versions).map(([k, v]) => `${k} ${v}`).join(', ')}.`);
  out.push(`Settings: ${Object.entries(m.settings).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join('; ')}.`);
  out.push('');
  if (r.broken.length) {
    out.push('**BROKEN BENCH:**');
    for (const b of r.broken) out.push(`- ${b}`);
    out.push('');
  }
}

/** The goals' table. */
function goalsMd(r: BenchReport, out: string[]): void {
  if (r.goals.length) {
    out.push('## Goals (issue 8), as ratios within this run');
    out.push('');
    out.push('| what | goal | measured | met |');
    out.push('|---|---|---:|:-:|');
    for (const g of r.goals) out.push(`| ${g.what} | ${g.goal} | ${g.measured} | ${g.met === null ? '?' : g.met ? 'yes' : 'no'} |`);
    out.push('');
  }
}

/** Gateway vs plain nginx vs direct, one row per cell. */
function comparisonMd(r: BenchReport, out: string[]): void {
  out.push('## Gateway vs plain nginx vs direct');
  out.push('');
  out.push('Medians over rounds. req/s = responses per second; latency in ms (2xx only); CPU = nginx worker CPU time per 1000 requests (µs per request).');
  out.push('');
  out.push('| payload | c | direct req/s | plain req/s | gateway req/s | gateway ÷ plain | p50 plain → gateway | added p50 | p99 plain → gateway | worker CPU µs/req plain → gateway |');
  out.push('|---|---:|---:|---:|---:|---:|---|---:|---|---|');
  for (const c of r.cells) {
    const d = c.byTarget.direct, p = c.byTarget.plain, g = c.byTarget.gateway;
    const cmp = r.comparisons.find((x) => x.payload === c.payload && x.connections === c.connections);
    out.push(`| ${c.label} | ${c.connections} | ${f(d?.rps, 0)} | ${f(p?.rps, 0)} | ${f(g?.rps, 0)} | ${f(cmp?.throughputRatio, 3)} | `
      + `${f(p?.latency.p50, 3)} → ${f(g?.latency.p50, 3)} | ${fs(cmp?.addedP50Ms, 3)} | ${f(p?.latency.p99, 2)} → ${f(g?.latency.p99, 2)} | `
      + `${f(p?.serverCpuMsPer1k, 0)} → ${f(g?.serverCpuMsPer1k, 0)} |`);
  }
  out.push('');
}

/** Every measurement, one row per cell and target. */
function measurementsMd(r: BenchReport, out: string[]): void {
  out.push('### Every measurement');
  out.push('');
  out.push('| payload | c | target | req/s | p50 | p90 | p99 | p99.9 | non-2xx | errors | MB/s | pages/s | nginx CPU ms/1k req | mock CPU ms/1k req | loadgen CPU % | nginx peak RSS MB |');
  out.push('|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const c of r.cells) {
    for (const t of ['direct', 'plain', 'gateway'] as TargetId[]) {
      const x = c.byTarget[t];
      if (!x) continue;
      out.push(`| ${c.label} | ${c.connections} | ${t} | ${f(x.rps, 0)} | ${f(x.latency.p50, 3)} | ${f(x.latency.p90, 3)} | ${f(x.latency.p99, 3)} | ${f(x.latency.p999, 3)} | `
        + `${x.non2xx} | ${x.errors + x.timeouts} | ${f(x.bytesPerSec / 1e6, 2)} | ${c.pages ? f(x.okRps * c.pages, 1) : ''} | ${f(x.serverCpuMsPer1k, 1)} | `
        + `${f(x.backendCpuMsPer1k, 1)} | ${f(x.loadgenCpuPct, 0)} | ${f(x.serverPeakRssMb, 1)} |`);
    }
  }
  out.push('');
}

/**
 * The realistic-latency cell (payload chat-paced, when measured): the gateway's price as a share of
 * a long streamed request, and proof that the load held its streams open (at the client by Little's
 * law, at the backend by the mock's own count).
 */
function realisticMd(r: BenchReport, out: string[]): void {
  const cells = r.cells.filter((c) => c.payload === 'chat-paced');
  if (!cells.length) return;
  out.push(`## Realistic latency: ${PACED.connections} streams at a model server's pace`);
  out.push('');
  out.push(`Mock backend: ${PACED.ttftMs} ms to the first token, then ${PACED.tokens} tokens ${PACED.tokenMs} ms apart, streamed (SSE, include_usage), so a request lasts about `
    + `${PACED.ttftMs + (PACED.tokens - 1) * PACED.tokenMs} ms; every target in the same run, rounds interleaved, medians. Open at once: requests in flight on the client side `
    + '(sum of latencies ÷ run length; the requests cut off at the end of a run are not counted) and at the backend (the mock\'s own count, sampled every 100 ms: median / max).');
  out.push('');
  out.push('| c | target | req/s | ÷ plain | p50 ms | p99 ms | added p99 ms | open at once: client | backend | worker CPU µs/req | mock CPU µs/req | loadgen CPU % |');
  out.push('|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const c of cells) {
    const pl = c.byTarget.plain;
    for (const t of ['direct', 'plain', 'gateway'] as TargetId[]) {
      const x = c.byTarget[t];
      if (!x) continue;
      const be = x.backendInflight ? `${f(x.backendInflight.median, 0)} / ${f(x.backendInflight.max, 0)}` : 'n/a';
      out.push(`| ${c.connections} | ${t} | ${f(x.rps, 0)} | ${pl ? f(x.rps / pl.rps, 3) : 'n/a'} | ${f(x.latency.p50, 1)} | ${f(x.latency.p99, 1)} | `
        + `${pl && t !== 'plain' ? fs(x.latency.p99 - pl.latency.p99, 2) : ''} | ${f(x.meanInflight, 0)} | ${be} | ${f(x.serverCpuMsPer1k, 0)} | ${f(x.backendCpuMsPer1k, 0)} | ${f(x.loadgenCpuPct, 0)} |`);
    }
  }
  out.push('');
}

/** Worker memory with large bodies held inside nginx (bench/memory.ts). */
function memoryMd(r: BenchReport, out: string[]): void {
  const m = r.memory;
  if (!m) return;
  out.push(`## Memory: worker RSS with ${m.connections} concurrent ${f(m.bodyMb, 1)} MB OCR bodies`);
  out.push('');
  if (m.skipped) {
    out.push(`Skipped: ${m.skipped}`);
    out.push('');
    return;
  }
  out.push(`Fresh nginx (${m.workers} workers) per target; the backend reads each body and holds its answer ${m.holdMs} ms, so ${m.connections} bodies sit inside nginx at once `
    + `for a ${m.durationS} s load. RSS = resident memory summed over the workers: at idle before the load, and the peak of samples every 100 ms during it; `
    + `high-water mark = the workers' VmHWM summed, ${m.hwmReset ? 'reset before the load (/proc/<pid>/clear_refs)' : 'since the workers started (the reset through /proc/<pid>/clear_refs failed)'}. `
    + 'Per request = (peak − idle) ÷ requests open at the backend.');
  out.push('');
  out.push('| target | idle RSS MB | peak RSS MB | high-water mark MB | added MB | open at backend (median / max) | added MB per request | ÷ body size | req/s |');
  out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const x of m.rows) {
    const be = x.result.backendInflight ? `${f(x.result.backendInflight.median, 0)} / ${f(x.result.backendInflight.max, 0)}` : 'n/a';
    out.push(`| ${x.target} | ${f(x.idleRssMb, 1)} | ${f(x.peakRssMb, 1)} | ${f(x.hwmMb, 1)} | ${f(x.addedMb, 1)} | ${be} | ${f(x.perRequestMb, 2)} | ${f(x.bodyMultiple, 2)} | ${f(x.result.rps, 1)} |`);
  }
  const g = m.rows.find((x) => x.target === 'gateway'), p = m.rows.find((x) => x.target === 'plain');
  if (g?.perRequestMb != null && p?.perRequestMb != null && g.perRequestMb !== null && p.perRequestMb !== null) {
    out.push('');
    out.push(`The gateway holds ${fs(g.perRequestMb - p.perRequestMb, 2)} MB per request over plain nginx (${f((g.perRequestMb - p.perRequestMb) / m.bodyMb, 2)}× the body).`);
  }
  out.push('');
}

/** The overload run, with and without clients that honor Retry-After. */
function overloadMd(r: BenchReport, out: string[]): void {
  if (r.overload) {
    const o = r.overload;
    out.push(`## Overload: OCR (250 KB) at ${f(o.offeredRps / o.capacityRps, 0)}x backend capacity`);
    out.push('');
    out.push(`Backend: mock vLLM running ${o.backend.maxConcurrency} requests at once, ${o.backend.latencyMs} ms each = ${f(o.capacityRps, 0)} req/s capacity; offered ${f(o.offeredRps, 0)} req/s (autocannon overallRate) over ${o.connections} connections for ${o.durationS} s. `
      + `Gateway caps: max_inflight ${o.gatewayLimits.max_inflight ?? 'none'}, max_queue ${o.gatewayLimits.max_queue ?? 'none'}.`);
    out.push('');
    out.push('| target | completed/s (2xx) | p50 ms | p99 ms | max ms | statuses | errors+timeouts |');
    out.push('|---|---:|---:|---:|---:|---|---:|');
    for (const t of ['plain', 'gateway'] as const) {
      const x = o.byTarget[t];
      if (!x) continue;
      out.push(`| ${t} | ${f(x.okRps, 1)} | ${f(x.latency.p50, 0)} | ${f(x.latency.p99, 0)} | ${f(x.latency.max, 0)} | ${statusText(x)} | ${x.errors + x.timeouts} |`);
    }
    out.push('');
    if (o.polite && (o.polite.plain || o.polite.gateway)) {
      const c = (o.polite.plain ?? o.polite.gateway)!.clients;
      out.push(`Clients that honor Retry-After (as the OpenAI SDKs do): ${c} closed-loop clients, each retrying a 429 after the Retry-After it was given; latency per request from its first attempt, retries included.`);
      out.push('');
      out.push('| target | completed/s (2xx) | p50 ms | p99 ms | max ms | attempts | 429s | other statuses | errors |');
      out.push('|---|---:|---:|---:|---:|---:|---:|---|---:|');
      for (const t of ['plain', 'gateway'] as const) {
        const x = o.polite[t];
        if (!x) continue;
        out.push(`| ${t} | ${f(x.completedPerS, 1)} | ${f(x.latency.p50, 0)} | ${f(x.latency.p99, 0)} | ${f(x.latency.max, 0)} | ${x.attempts} | ${x.refused} | ${JSON.stringify(x.other)} | ${x.errors} |`);
      }
      out.push('');
    }
  }
}

/** What each gateway feature costs. */
function featuresMd(r: BenchReport, out: string[]): void {
  if (r.features && (r.features.rows.length || r.features.skipped.length)) {
    out.push('## What each gateway feature costs');
    out.push('');
    out.push('Gateway variants with features switched off, same run, interleaved with plain nginx (medians). CPU = nginx worker CPU µs per request.');
    out.push('');
    out.push('| payload | c | variant | req/s | ÷ plain | p50 ms | p99 ms | worker CPU µs/req | CPU vs all on |');
    out.push('|---|---:|---|---:|---:|---:|---:|---:|---:|');
    for (const pl of r.features.plain) {
      const cellRows = r.features.rows.filter((x) => x.payload === pl.payload && x.connections === pl.connections);
      const label = cellRows[0]?.label ?? pl.payload;
      out.push(`| ${label} | ${pl.connections} | plain nginx | ${f(pl.result.rps, 0)} | 1 | ${f(pl.result.latency.p50, 3)} | ${f(pl.result.latency.p99, 2)} | ${f(pl.result.serverCpuMsPer1k, 0)} | |`);
      const all = cellRows.find((x) => x.variant === 'all');
      for (const x of cellRows) {
        const cpu = x.result.serverCpuMsPer1k, cpuAll = all?.result.serverCpuMsPer1k;
        out.push(`| ${x.label} | ${x.connections} | ${x.variantLabel} | ${f(x.result.rps, 0)} | ${f(x.throughputRatio, 3)} | ${f(x.result.latency.p50, 3)} | ${f(x.result.latency.p99, 2)} | ${f(cpu, 0)} | `
          + `${x.variant === 'all' || cpu === null || cpuAll === null || cpuAll === undefined ? '' : fs(cpu - cpuAll, 0)} |`);
      }
    }
    for (const sk of r.features.skipped) out.push(`\nSkipped: ${sk}`);
    out.push('');
  }
}

/** Instructions per request (callgrind). */
function instructionsMd(r: BenchReport, out: string[]): void {
  if (r.instructions) {
    out.push('## Instructions per request (callgrind: repeatable, unlike req/s and CPU seconds on a shared machine)');
    out.push('');
    if (r.instructions.skipped) out.push(`Skipped: ${r.instructions.skipped}`);
    else {
      out.push(`One nginx process (master_process off) under ${r.instructions.tool}, counting only the measured requests (c=4), after a warm-up; the idle gateway's clock-driven work (health checks, periodic jobs), counted in a 5 s window before them, is subtracted`
        + `${r.instructions.build ? `; ${r.instructions.build}` : ''}.`);
      out.push('');
      out.push('| payload | target | requests | instructions per request | ÷ plain nginx |');
      out.push('|---|---|---:|---:|---:|');
      for (const x of r.instructions.rows) out.push(`| ${PAYLOADS[x.payload].label} | ${x.label} | ${x.requests} | ${Math.round(x.instructionsPerRequest).toLocaleString('en-US')} | ${f(x.vsPlain, 1)} |`);
      const feats = featureInstructions(r.instructions.rows);
      if (feats.length) {
        // A heading of its own: bench/docs.ts cuts blocks at headings, so this is its own docs block.
        out.push('');
        out.push('### Instructions per feature');
        out.push('');
        out.push(`What each feature costs, as the difference between two variants of the table above (instructions per request${r.instructions.build ? `, ${r.instructions.build}` : ''}):`);
        out.push('');
        out.push('| payload | feature | from | instructions per request |');
        out.push('|---|---|---|---:|');
        for (const x of feats) out.push(`| ${PAYLOADS[x.payload].label} | ${x.feature} | ${x.from} | ${Math.round(x.instructions).toLocaleString('en-US')} |`);
      }
    }
    out.push('');
  }
}

/** The extract stage, the real target and the llama-server tier. */
function realMd(r: BenchReport, out: string[]): void {
  if (r.extract) {
    out.push(extractMarkdown(r.extract).replace(/^### /, '## '));
    out.push('');
  }
  if (r.real) {
    out.push(`## Real target ${r.real.url}, model ${r.real.model}, OCR ${r.real.imageKb} KB PNG`);
    out.push('');
    out.push('| c | pages/s | tokens/s | p50 ms | p99 ms | statuses | errors+timeouts |');
    out.push('|---:|---:|---:|---:|---:|---|---:|');
    for (const row of r.real.rows) {
      out.push(`| ${row.connections} | ${f(row.pagesPerSec, 2)} | ${f(row.tokensPerSec, 1)} | ${f(row.result.latency.p50, 0)} | ${f(row.result.latency.p99, 0)} | ${statusText(row.result)} | ${row.result.errors + row.result.timeouts} |`);
    }
    out.push('');
  }
  if (r.llama) out.push(llamaMarkdown(r.llama));
}

/** The regression check. */
function regressionMd(r: BenchReport, out: string[]): void {
  out.push('## Regression check (ratios vs bench/baseline.json, warnings only)');
  out.push('');
  out.push(r.regression.length ? r.regression.map((x) => `- ${x}`).join('\n') : '- no ratio moved past the tolerance');
  out.push('');
}

export function markdown(r: BenchReport): string {
  const out: string[] = [];
  for (const section of [headerMd, goalsMd, comparisonMd, measurementsMd, realisticMd, memoryMd, overloadMd, featuresMd, instructionsMd, realMd, regressionMd]) section(r, out);
  return out.join('\n');
}

const COLORS: Record<TargetId, string> = { direct: '#7f7f7f', plain: '#1f77b4', gateway: '#ff7f0e' };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * Latency (log scale) vs achieved req/s, one panel per payload measured at several connection
 * counts; a line per target, solid p50 and dashed p99, points labelled with the connection count.
 */
export function svgChart(r: BenchReport): string {
  const payloads = [...new Set(r.cells.map((c) => c.payload))].filter((p) => r.cells.filter((c) => c.payload === p).length >= 2);
  const W = 460, H = 320, cols = Math.min(2, Math.max(1, payloads.length));
  const rows = Math.max(1, Math.ceil(payloads.length / cols));
  const top = 50;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W * cols}" height="${top + H * rows}" font-family="sans-serif" font-size="11">`);
  parts.push(`<rect width="100%" height="100%" fill="white"/>`);
  parts.push(`<text x="10" y="18" font-size="14" font-weight="bold">${esc(`Latency vs load per target (${r.meta.profile} profile, ${r.meta.time})`)}</text>`);
  let lx = 10;
  for (const t of ['direct', 'plain', 'gateway'] as TargetId[]) {
    parts.push(`<line x1="${lx}" y1="34" x2="${lx + 24}" y2="34" stroke="${COLORS[t]}" stroke-width="2"/><text x="${lx + 28}" y="38">${t}</text>`);
    lx += 90;
  }
  parts.push(`<text x="${lx}" y="38">solid: p50, dashed: p99; labels: connections</text>`);
  payloads.forEach((p, i) => {
    const ox = (i % cols) * W, oy = top + Math.floor(i / cols) * H;
    const cells = r.cells.filter((c) => c.payload === p).sort((a, b) => a.connections - b.connections);
    const pts: { t: TargetId; x: number; p50: number; p99: number; c: number }[] = [];
    for (const c of cells) {
      for (const t of ['direct', 'plain', 'gateway'] as TargetId[]) {
        const m = c.byTarget[t];
        if (m && Number.isFinite(m.latency.p50) && Number.isFinite(m.latency.p99)) pts.push({ t, x: m.rps, p50: m.latency.p50, p99: m.latency.p99, c: c.connections });
      }
    }
    if (pts.length === 0) return;
    const L = 55, R = 15, T = 25, B = 40;
    const pw = W - L - R, ph = H - T - B;
    const xmax = Math.max(...pts.map((q) => q.x)) * 1.08 || 1;
    const ylo = 10 ** Math.floor(Math.log10(Math.max(1e-3, Math.min(...pts.map((q) => q.p50)))));
    const yhi = 10 ** Math.ceil(Math.log10(Math.max(...pts.map((q) => q.p99))));
    const X = (v: number) => ox + L + (v / xmax) * pw;
    const Y = (v: number) => oy + T + ph - ((Math.log10(Math.max(v, ylo)) - Math.log10(ylo)) / (Math.log10(yhi) - Math.log10(ylo) || 1)) * ph;
    parts.push(`<text x="${ox + L}" y="${oy + 15}" font-weight="bold">${esc(cells[0].label)}</text>`);
    parts.push(`<rect x="${ox + L}" y="${oy + T}" width="${pw}" height="${ph}" fill="none" stroke="#ccc"/>`);
    for (let e = Math.log10(ylo); e <= Math.log10(yhi) + 1e-9; e++) {
      const v = 10 ** e;
      parts.push(`<line x1="${ox + L}" y1="${Y(v)}" x2="${ox + L + pw}" y2="${Y(v)}" stroke="#eee"/><text x="${ox + L - 5}" y="${Y(v) + 4}" text-anchor="end">${v >= 1 ? v.toFixed(0) : v.toString()}</text>`);
    }
    for (let k = 0; k <= 4; k++) {
      const v = (xmax * k) / 4;
      parts.push(`<text x="${X(v)}" y="${oy + T + ph + 15}" text-anchor="middle">${v >= 1000 ? `${(v / 1000).toFixed(1)}k` : v.toFixed(v < 10 ? 1 : 0)}</text>`);
    }
    parts.push(`<text x="${ox + L + pw / 2}" y="${oy + H - 8}" text-anchor="middle">achieved req/s</text>`);
    parts.push(`<text transform="translate(${ox + 14},${oy + T + ph / 2}) rotate(-90)" text-anchor="middle">latency ms (log)</text>`);
    for (const t of ['direct', 'plain', 'gateway'] as TargetId[]) {
      const tp = pts.filter((q) => q.t === t);
      if (tp.length === 0) continue;
      parts.push(`<polyline fill="none" stroke="${COLORS[t]}" stroke-width="2" points="${tp.map((q) => `${X(q.x).toFixed(1)},${Y(q.p50).toFixed(1)}`).join(' ')}"/>`);
      parts.push(`<polyline fill="none" stroke="${COLORS[t]}" stroke-width="1.5" stroke-dasharray="5,3" points="${tp.map((q) => `${X(q.x).toFixed(1)},${Y(q.p99).toFixed(1)}`).join(' ')}"/>`);
      for (const q of tp) {
        parts.push(`<circle cx="${X(q.x).toFixed(1)}" cy="${Y(q.p50).toFixed(1)}" r="2.5" fill="${COLORS[t]}"/>`);
        if (t === 'gateway') parts.push(`<text x="${X(q.x).toFixed(1)}" y="${(Y(q.p50) - 6).toFixed(1)}" text-anchor="middle" fill="#555">c=${q.c}</text>`);
      }
    }
  });
  parts.push('</svg>');
  return parts.join('\n');
}

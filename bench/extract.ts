/**
 * Model-extraction micro-benchmark (issue 2), inside a real nginx: the gateway's byte scanner
 * (njs/src/core/modelScan.ts) vs JSON.parse on 1 KB, 1 MB and 20 MB OCR bodies.
 *   1. In the VM: one request per body and position runs N scans and M JSON.parse calls in a loop
 *      (bench/njs/extract.ts /loop) and reports ms per iteration, plus the one-off cost of the first
 *      r.requestBuffer / r.requestText access. "model" first and "model" last (the scanner's worst
 *      case, and what OpenAI SDKs send). Several rounds, median.
 *   2. End to end: autocannon against js_content handlers that answer after nothing (the body is
 *      still read by nginx), scanModel(r.requestBuffer) or JSON.parse(r.requestText).model;
 *      req/s, p50/p99 and worker CPU ms per request. Rounds interleave the handlers, median.
 * Runs as part of bench/run.ts, or alone: `npx tsx bench/extract.ts [--profile ci]`.
 */
import * as esbuild from 'esbuild';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ocrBody, OCR } from '../tools/clients';
import { projectRoot } from '../tools/config';
import { findNginx, NginxRuntime } from '../tools/findNginx';
import { startNginx } from '../tools/nginx';
import { freePort } from '../tools/stack';
import { LoadResult, median, medianResult, runLoad } from './load';
import { childPids } from './procstat';
import { EXTRACT_BODIES, ExtractProfile, PROFILES } from './scenarios';

export interface VmRow {
  body: string;
  bytes: number;
  position: 'first' | 'last';
  /** Medians over rounds, ms. */
  scanMs: number;
  parseMs: number;
  /** One native Buffer.indexOf pass over the whole body: the floor of any Buffer scanner. */
  indexOfMs: number;
  bufferMs: number;
  textMs: number;
  /** parse / scan */
  ratio: number;
}

export interface E2eRow {
  body: string;
  handler: 'noop' | 'scan' | 'parse';
  connections: number;
  result: LoadResult & { rounds: number };
  /** nginx worker CPU ms per request (the extraction's cost with contention factored out). */
  cpuMsPerReq: number | null;
}

export interface ExtractResult {
  njsVersion: string;
  rounds: number;
  vm: VmRow[];
  e2e: E2eRow[];
  broken: string[];
}

/** Bundles bench/njs/extract.ts with the gateway's esbuild settings (njs/build.mjs's NJS_UNSUPPORTED). */
async function buildModule(outfile: string): Promise<void> {
  // Importing build.mjs also runs the gateway build (it is a script); `npm run bench` has just done so.
  const mod = (await import(pathToFileURL(join(projectRoot, 'njs/build.mjs')).href as string)) as { NJS_UNSUPPORTED: string[] };
  await esbuild.build({
    entryPoints: [join(projectRoot, 'bench/njs/extract.ts')],
    bundle: true,
    format: 'esm',
    target: 'es2017',
    supported: Object.fromEntries(mod.NJS_UNSUPPORTED.map((f) => [f, false])),
    external: ['fs', 'crypto', 'querystring', 'zlib', 'xml'],
    outfile,
    legalComments: 'none',
    logLevel: 'warning',
  });
}

export async function runExtract(p: ExtractProfile, rt: NginxRuntime, log: (m: string) => void): Promise<ExtractResult> {
  const prefix = mkdtempSync(join(tmpdir(), 'gw-bench-extract-'));
  chmodSync(prefix, 0o755); // workers run as `nobody` when the master is root
  const broken: string[] = [];
  try {
    await buildModule(join(prefix, 'extract.js'));
    const port = await freePort();
    const conf = readFileSync(join(projectRoot, 'bench/extract-nginx.conf'), 'utf8')
      .replace(/^__JS_MODULE__$/m, rt.jsModule ? `load_module ${rt.jsModule};` : '')
      .replace(/__PREFIX__/g, prefix)
      .replace(/__LISTEN__/g, `127.0.0.1:${port}`);
    const nginx = await startNginx(rt, { prefix, conf, host: '127.0.0.1', port });
    const base = `http://127.0.0.1:${port}`;
    try {
      const njsVersion = (await (await fetch(`${base}/version`)).text()).trim();
      const workers = () => childPids(nginx.pid);

      // 1. In the VM.
      const samples: Record<string, { scan: number[]; parse: number[]; indexOf: number[]; buffer: number[]; text: number[]; bytes: number }> = {};
      for (let round = 0; round < p.rounds; round++) {
        for (const b of EXTRACT_BODIES) {
          for (const position of ['first', 'last'] as const) {
            const body = ocrBody(OCR, b.imageBytes, { modelLast: position === 'last' });
            const res = await fetch(`${base}/loop?scan=${b.scanIters}&parse=${b.parseIters}`, { method: 'POST', body });
            const j = await res.json() as { scanned: string; parsed: string; bytes: number; bufferMs: number; textMs: number; scanTotalMs: number; parseTotalMs: number; indexOfTotalMs: number };
            if (res.status !== 200 || j.scanned !== OCR || j.parsed !== OCR) {
              broken.push(`extract /loop ${b.id} model ${position}: status ${res.status}, ${JSON.stringify(j).slice(0, 200)}`);
              continue;
            }
            const k = `${b.id}|${position}`;
            const s = (samples[k] ??= { scan: [], parse: [], indexOf: [], buffer: [], text: [], bytes: j.bytes });
            s.scan.push(j.scanTotalMs / b.scanIters);
            s.parse.push(j.parseTotalMs / b.parseIters);
            s.indexOf.push(j.indexOfTotalMs / b.scanIters);
            s.buffer.push(j.bufferMs);
            s.text.push(j.textMs);
          }
        }
        log(`extract: in-VM round ${round + 1}/${p.rounds} done`);
      }
      const vm: VmRow[] = [];
      for (const b of EXTRACT_BODIES) {
        for (const position of ['first', 'last'] as const) {
          const s = samples[`${b.id}|${position}`];
          if (!s) continue;
          const scanMs = median(s.scan);
          const parseMs = median(s.parse);
          vm.push({ body: b.id, bytes: s.bytes, position, scanMs, parseMs, indexOfMs: median(s.indexOf), bufferMs: median(s.buffer), textMs: median(s.text), ratio: parseMs / scanMs });
        }
      }

      // 2. End to end.
      const e2e: E2eRow[] = [];
      for (const b of EXTRACT_BODIES) {
        const body = ocrBody(OCR, b.imageBytes, { modelLast: true });
        const runs: Record<string, LoadResult[]> = { noop: [], scan: [], parse: [] };
        for (let round = 0; round < p.e2eRounds; round++) {
          const order = (['noop', 'scan', 'parse'] as const).slice();
          for (let i = 0; i < round % 3; i++) order.push(order.shift()!);
          for (const h of order) {
            const r = await runLoad({ url: base, path: `/${h}`, body, connections: b.connections, duration: p.e2eDuration, serverPids: workers });
            if (r.errors || r.non2xx || r.ok === 0) broken.push(`extract /${h} ${b.id}: ${r.errors} errors, ${r.non2xx} non-2xx, ${r.ok} ok`);
            runs[h].push(r);
          }
        }
        for (const h of ['noop', 'scan', 'parse'] as const) {
          const result = medianResult(runs[h]);
          e2e.push({ body: b.id, handler: h, connections: b.connections, result, cpuMsPerReq: result.serverCpuMsPer1k === null ? null : result.serverCpuMsPer1k / 1000 });
        }
        log(`extract: end-to-end ${b.id} done`);
      }
      const bad = nginx.errorLog().split('\n').filter((l) => /\[alert\]|\[emerg\]|exited on signal|js exception/.test(l));
      if (bad.length) broken.push(`extract nginx error.log: ${bad.slice(0, 3).join(' | ')}`);
      return { njsVersion, rounds: p.rounds, vm, e2e, broken };
    } finally {
      await nginx.stop();
    }
  } finally {
    rmSync(prefix, { recursive: true, force: true });
  }
}

export function extractMarkdown(x: ExtractResult): string {
  const f = (v: number, d = 3) => (Number.isFinite(v) ? v.toFixed(d) : 'n/a');
  const out: string[] = [];
  out.push(`### Model extraction inside nginx (njs ${x.njsVersion}), median of ${x.rounds} rounds`);
  out.push('');
  out.push('In the VM, per iteration (ms); first access = one-off cost of `r.requestBuffer` / `r.requestText`:');
  out.push('');
  out.push('| body | model | scanner (Buffer) | JSON.parse(text).model | parse / scan | one Buffer.indexOf pass | first r.requestBuffer | first r.requestText |');
  out.push('|---|---|---:|---:|---:|---:|---:|---:|');
  for (const r of x.vm) {
    out.push(`| ${r.body} (${r.bytes} B) | ${r.position} | ${f(r.scanMs, 4)} | ${f(r.parseMs, 4)} | ${f(r.ratio, 1)}x | ${f(r.indexOfMs, 4)} | ${r.bufferMs} | ${r.textMs} |`);
  }
  out.push('');
  out.push('End to end, js_content answering the model ("model" last; 1 worker; req/s, latency ms, worker CPU ms per request):');
  out.push('');
  out.push('| body | c | noop req/s | scan req/s | parse req/s | scan / parse | p50 noop / scan / parse | p99 noop / scan / parse | CPU ms/req noop / scan / parse |');
  out.push('|---|---:|---:|---:|---:|---:|---|---|---|');
  const bodies = [...new Set(x.e2e.map((r) => r.body))];
  for (const b of bodies) {
    const row = (h: string) => x.e2e.find((r) => r.body === b && r.handler === h)!;
    const n = row('noop'), s = row('scan'), pa = row('parse');
    const c = (r: E2eRow) => (r.cpuMsPerReq === null ? 'n/a' : f(r.cpuMsPerReq, 3));
    out.push(`| ${b} | ${n.connections} | ${f(n.result.rps, 0)} | ${f(s.result.rps, 0)} | ${f(pa.result.rps, 0)} | ${f(s.result.rps / pa.result.rps, 2)}x | `
      + `${f(n.result.latency.p50, 2)} / ${f(s.result.latency.p50, 2)} / ${f(pa.result.latency.p50, 2)} | `
      + `${f(n.result.latency.p99, 2)} / ${f(s.result.latency.p99, 2)} / ${f(pa.result.latency.p99, 2)} | ${c(n)} / ${c(s)} / ${c(pa)} |`);
  }
  return out.join('\n');
}

// Standalone: npx tsx bench/extract.ts [--profile ci]
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const profile = process.argv.includes('ci') ? PROFILES.ci : PROFILES.full;
  const x = await runExtract(profile.extract, findNginx(), (m) => process.stderr.write(`${m}\n`));
  console.log(extractMarkdown(x));
  if (x.broken.length) {
    console.error(`broken:\n${x.broken.join('\n')}`);
    process.exit(1);
  }
}

// The benchmark's own arithmetic and config edits (bench/), so a broken bench fails here rather than
// as odd numbers: percentiles, medians across rounds, the ratio regression check, the edits that
// switch the log hooks off for the feature-cost variants, the plain-nginx template and the PNG.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { renderBlocks } from '../../bench/docs';
import { featureInstructions, FLOORS, InstructionRow, InstructionsReport, renderFloor } from '../../bench/instructions';
import { LoadResult, median, medianResult, percentiles } from '../../bench/load';
import type { MemoryResult } from '../../bench/memory';
import { pagePng } from '../../bench/png';
import { Baseline, BenchReport, compare, CellResult, goals, instructionRegressions, makeBaseline, markdown, regressions } from '../../bench/report';
import { BACKENDS, LOGS_OFF, PACED, PAYLOADS, PROFILES } from '../../bench/scenarios';
import { renderPlain } from '../../bench/targets';
import type { NginxRuntime } from '../../tools/findNginx';
import { nginxDir, projectRoot, renderNginxConf } from '../../tools/config';
import { startMockVllm } from '../../tools/mockVllm';

function load(over: Partial<LoadResult>): LoadResult {
  return {
    connections: 1, durationS: 1, rps: 100, okRps: 100, completed: 100, ok: 100, non2xx: 0, statuses: { 200: 100 }, errors: 0, timeouts: 0,
    bytesPerSec: 1000, latency: { p50: 1, p90: 2, p99: 3, p999: 4, mean: 1.5, max: 5 }, serverCpuMsPer1k: 50, backendCpuMsPer1k: 10,
    loadgenCpuPct: 20, serverPeakRssMb: 10, meanInflight: 1, backendInflight: null, ...over,
  };
}

describe('bench arithmetic', () => {
  it('percentiles are nearest-rank over the sorted values', () => {
    const v = Array.from({ length: 1000 }, (_, i) => 1000 - i); // 1000..1, unsorted on purpose
    const p = percentiles(v);
    expect([p.p50, p.p90, p.p99, p.p999, p.max]).toEqual([500, 900, 990, 999, 1000]);
    expect(p.mean).toBeCloseTo(500.5);
    expect(Number.isNaN(percentiles([]).p50)).toBe(true);
  });

  it('median of rounds; statuses and errors are summed, so one broken round shows', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    const m = medianResult([load({ rps: 100 }), load({ rps: 300, errors: 2, statuses: { 200: 90, 502: 10 } }), load({ rps: 200 })]);
    expect(m.rps).toBe(200);
    expect(m.errors).toBe(2);
    expect(m.statuses).toEqual({ 200: 290, 502: 10 });
    expect(m.rounds).toBe(3);
  });

  it('compares gateway with plain per cell, and warns only past the tolerance', () => {
    const cell: CellResult = {
      payload: 'chat', label: 'small chat', connections: 16, pages: 0,
      byTarget: { plain: { ...load({ rps: 1000, serverCpuMsPer1k: 50 }), rounds: 1 }, gateway: { ...load({ rps: 900, serverCpuMsPer1k: 100, latency: { p50: 1.2, p90: 2, p99: 3.5, p999: 4, mean: 1, max: 5 } }), rounds: 1 } },
    };
    const [c] = compare([cell]);
    expect(c.throughputRatio).toBeCloseTo(0.9);
    expect(c.addedP50Ms).toBeCloseTo(0.2);
    expect(c.cpuRatio).toBeCloseTo(2);
    expect(c.addedCpuUs).toBeCloseTo(50);
    const base: Baseline = { profile: 'ci', commit: 'x', time: 't', tolerance: 0.35, ratios: { 'chat c=16': { throughputRatio: 1, cpuRatio: 2 } } };
    expect(regressions([c], base)).toEqual([]);
    expect(regressions([{ ...c, throughputRatio: 0.6 }], base)).toHaveLength(1);
    expect(regressions([{ ...c, cpuRatio: 3 }], base)).toHaveLength(1);
    expect(regressions([c], null)[0]).toMatch(/no baseline/);
  });
});

describe('bench configs', () => {
  it('LOGS_OFF switches off the log-phase hook, the access log and the usage body filter of the current config', () => {
    const conf = renderNginxConf({ prefix: '/p', listen: '127.0.0.1:1', jsModule: null, adminListen: '127.0.0.1:2' });
    const off = LOGS_OFF.conf(conf);
    expect(off).toMatch(/access_log off;/);
    expect(off).not.toMatch(/gw_null|gw_json;/);
    const server = readFileSync(join(nginxDir, 'gateway-server.conf'), 'utf8');
    expect(server).toMatch(/^\s*js_body_filter gw\.usage/m);
    expect(LOGS_OFF.includes['gateway-server.conf'](server)).not.toMatch(/^\s*js_body_filter gw\.usage/m);
  });

  it('the plain-nginx template has the placeholders bench/targets.ts fills, each on a line of its own', () => {
    const t = readFileSync(join(projectRoot, 'bench/plain-nginx.conf'), 'utf8');
    expect(t).toMatch(/^__UPSTREAMS__$/m);
    expect(t).toMatch(/^__SERVERS__$/m);
    expect(t).toMatch(/proxy_buffering off;/);
    expect(t).toMatch(/client_body_buffer_size 64m;/);
  });

  it('payload bodies are deterministic and carry their model', () => {
    for (const p of Object.values(PAYLOADS)) {
      const a = p.body();
      expect(a).toBe(p.body());
      expect(JSON.parse(a).model).toBe(p.model);
    }
    expect(PAYLOADS['ocr-2m'].body().length).toBeGreaterThan(2_000_000);
  });

  it('pagePng is a valid PNG of about the asked size', () => {
    const png = pagePng(100_000);
    expect(png.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
    expect(png.length).toBeGreaterThan(70_000);
    expect(png.length).toBeLessThan(140_000);
    const width = png.readUInt32BE(16), height = png.readUInt32BE(20);
    const idatLen = png.readUInt32BE(33);
    expect(png.subarray(37, 41).toString('latin1')).toBe('IDAT');
    expect(inflateSync(png.subarray(41, 41 + idatLen)).length).toBe((width + 1) * height);
  });
});

function report(over: Partial<BenchReport>): BenchReport {
  return {
    meta: { time: 't', profile: 'full', machine: { cpu: 'cpu', cores: 2, memGb: 4, kernel: 'k', os: 'os', loadavgAtStart: [0, 0, 0] }, versions: { commit: 'c', nginx: 'n', njs: 'j' }, settings: { rounds: 3, duration_s: 3 } },
    cells: [], comparisons: [], goals: [], overload: null, features: null, instructions: null, extract: null, real: null, regression: [], broken: [], ...over,
  };
}

function irRow(payload: 'chat' | 'ocr-2m', target: string, ir: number, plain = 30000): InstructionRow {
  return { payload, target, label: target, requests: 100, instructionsPerRequest: ir, vsPlain: target === 'plain' ? 1 : ir / plain };
}

const BUILD = 'nginx 1.26.3 (Debian trixie), njs 0.8.9, njs engine';
const chatRows = [
  irRow('chat', 'plain', 30000), irRow('chat', 'all', 700000), irRow('chat', 'no-auth', 600000), irRow('chat', 'no-queue', 620000),
  irRow('chat', 'no-logs', 420000), irRow('chat', 'routing-only', 250000), irRow('chat', 'jwt-hs256', 950000),
];

describe('bench instructions: per feature, per build', () => {
  it('derives each feature as the difference of two variants, and what does not add up', () => {
    const f = Object.fromEntries(featureInstructions(chatRows).map((x) => [x.from, x.instructions]));
    expect(f['routing-only − plain']).toBe(220000);
    expect(f['all − no-auth']).toBe(100000);
    expect(f['all − no-queue']).toBe(80000);
    expect(f['all − no-logs']).toBe(280000);
    expect(f['jwt-hs256 − all']).toBe(250000);
    expect(f['jwt-rs256 − all']).toBeUndefined(); // not measured: left out, not zero
    expect(f['all − routing-only − Σ']).toBe(700000 - 250000 - (100000 + 80000 + 280000));
    expect(featureInstructions([irRow('ocr-2m', 'all', 1)])).toEqual([]);
    const floors = Object.fromEntries(featureInstructions([...chatRows, irRow('chat', 'floor-1vm', 55000), irRow('chat', 'floor-2vm', 70000)]).map((x) => [x.from, x.instructions]));
    expect(floors['floor-1vm − plain']).toBe(25000);
    expect(floors['floor-2vm − floor-1vm']).toBe(15000);
    expect(floors['all − floor-2vm']).toBe(630000);
  });

  it('the njs floor hooks do-nothing handlers into the plain config, where the gateway hooks its own', () => {
    const prefix = mkdtempSync(join(tmpdir(), 'gw-floor-'));
    try {
      const plain = renderPlain(prefix, 1, { up_chat: 1001, up_ocr: 1002 }, { up_chat: 2001, up_ocr: 2002 });
      const rt: NginxRuntime = { bin: 'nginx', jsModule: '/m/ngx_http_js_module.so', version: '1.26.3', source: 'provisioned', jsEngine: null, suite: null };
      const two = renderFloor(plain, prefix, rt, 'up_chat', FLOORS[1]);
      expect(two.startsWith('load_module /m/ngx_http_js_module.so;\n')).toBe(true);
      expect(two).toMatch(/http \{\n {4}js_path .*;\n {4}js_import floor from floor\.js;/);
      expect(two).toContain('js_content floor.route;');
      expect(two).toContain('location @floor_upstream {\n            js_body_filter floor.filter;\n            proxy_pass http://up_chat;');
      // The other upstream's server{} stays plain, and the module nginx imports is the one in the repo.
      expect(two.match(/proxy_pass http:\/\/up_ocr;/g)).toHaveLength(1);
      expect(readFileSync(join(prefix, 'floor.js'), 'utf8')).toBe(readFileSync(join(projectRoot, 'bench/njs/floor.js'), 'utf8'));
      const one = renderFloor(plain, prefix, { ...rt, jsModule: null, jsEngine: 'qjs' }, 'up_chat', FLOORS[0]);
      expect(one).not.toContain('load_module');
      expect(one).toContain('js_engine qjs;');
      expect(one).not.toContain('js_content');
      expect(() => renderFloor(plain, prefix, rt, 'up_missing', FLOORS[0])).toThrow(/no location for up_missing/);
    } finally {
      rmSync(prefix, { recursive: true, force: true });
    }
  });

  it('warns past +5 % of the baseline ratio, and not across builds', () => {
    const rep: InstructionsReport = { tool: 'callgrind', build: BUILD, rows: chatRows, skipped: null, broken: [] };
    const base = makeBaseline(report({ instructions: rep }));
    expect(base.instructionsBuild).toBe(BUILD);
    expect(Object.keys(base.instructions ?? {}).sort()).toEqual(['chat all', 'chat jwt-hs256', 'chat no-auth', 'chat no-logs', 'chat no-queue', 'chat routing-only']);
    expect(instructionRegressions(rep, base)).toEqual([]);
    const worse = { ...rep, rows: rep.rows.map((r) => (r.target === 'no-queue' ? irRow('chat', 'no-queue', 620000 * 1.06) : r)) };
    const w = instructionRegressions(worse, base);
    expect(w).toHaveLength(1);
    expect(w[0]).toMatch(/^chat no-queue: /);
    expect(instructionRegressions({ ...worse, rows: worse.rows.map((r) => (r.target === 'no-queue' ? irRow('chat', 'no-queue', 620000 * 1.04) : r)) }, base)).toEqual([]);
    const other = instructionRegressions({ ...worse, build: 'nginx 1.30.0 (Debian sid), njs 1.0.2, qjs engine' }, base);
    expect(other).toHaveLength(1);
    expect(other[0]).toMatch(/not compared/);
  });

  it('an update keeps the rows the run did not count (same build) and drops another build\'s', () => {
    const full: InstructionsReport = { tool: 'callgrind', build: BUILD, rows: [...chatRows, irRow('ocr-2m', 'plain', 34000, 34000), irRow('ocr-2m', 'all', 12e6, 34000)], skipped: null, broken: [] };
    const prev = makeBaseline(report({ instructions: full }));
    const ci: InstructionsReport = { ...full, rows: [irRow('chat', 'plain', 30000), irRow('chat', 'all', 600000)] };
    const next = makeBaseline(report({ instructions: ci }), prev);
    expect(next.instructions?.['chat all']).toBe(20);
    expect(next.instructions?.['ocr-2m all']).toBe(prev.instructions?.['ocr-2m all']);
    expect(next.instructions?.['chat jwt-hs256']).toBe(prev.instructions?.['chat jwt-hs256']);
    const sid = makeBaseline(report({ instructions: { ...ci, build: 'other' } }), prev);
    expect(Object.keys(sid.instructions ?? {})).toEqual(['chat all']);
  });
});

describe('bench realistic-latency and memory cells', () => {
  const paced = (rps: number, p99: number, inflight: number): LoadResult & { rounds: number } => ({
    ...load({ connections: PACED.connections, rps, latency: { p50: 250, p90: 260, p99, p999: p99, mean: 250, max: p99 }, meanInflight: 240 }),
    backendInflight: { median: inflight, max: 256, samples: 90 }, rounds: 3,
  });
  const cell: CellResult = {
    payload: 'chat-paced', label: PAYLOADS['chat-paced'].label, connections: PACED.connections, pages: 0,
    byTarget: { plain: paced(1000, 270, 256), gateway: paced(990, 270.5, 255) },
  };

  it('is measured in the full profile only, at 256 streams, on a backend paced like a model server', () => {
    expect(PROFILES.full.cells).toContainEqual({ payload: 'chat-paced', connections: [256] });
    expect(PROFILES.ci.cells.map((c) => c.payload)).not.toContain('chat-paced');
    expect(PROFILES.full.memory).not.toBeNull();
    expect(PROFILES.ci.memory).toBeNull();
    expect(BACKENDS.be_chat_paced).toMatchObject({ latencyMs: 50, chunks: 20, chunkDelayMs: 10 });
    const body = JSON.parse(PAYLOADS['chat-paced'].body());
    expect(body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
  });

  it('checks the issue\'s goals and shows how many streams were open', () => {
    const g = goals(compare([cell]));
    const tp = g.find((x) => /streams.*throughput/.test(x.what));
    const p99 = g.find((x) => /streams.*p99/.test(x.what));
    expect(tp).toMatchObject({ goal: '≥ 0.98', measured: '0.990', met: true });
    expect(p99).toMatchObject({ goal: '≤ 1 ms', measured: '0.50 ms', met: true });
    expect(goals(compare([{ ...cell, byTarget: { ...cell.byTarget, gateway: paced(900, 275, 256) } }])).filter((x) => /streams/.test(x.what)).map((x) => x.met)).toEqual([false, false]);
    const md = markdown(report({ cells: [cell], comparisons: compare([cell]) }));
    expect(md).toMatch(/## Realistic latency: 256 streams/);
    expect(md).toMatch(/\| 256 \| gateway \| 990 \| 0\.990 \| 250\.0 \| 270\.5 \| \+0\.50 \| 240 \| 255 \/ 256 \|/);
  });

  it('reports memory per held request, and the docs generator has blocks for both cells', () => {
    const mem: MemoryResult = {
      bodyMb: 2, connections: 32, holdMs: 1000, workers: 2, durationS: 3, hwmReset: true, skipped: null,
      rows: [
        { target: 'plain', idleRssMb: 15, peakRssMb: 79, hwmMb: 80, addedMb: 64, perRequestMb: 2, bodyMultiple: 1, result: { ...load({}), rounds: 1 } },
        { target: 'gateway', idleRssMb: 40, peakRssMb: 168, hwmMb: 170, addedMb: 128, perRequestMb: 4, bodyMultiple: 2, result: { ...load({}), rounds: 1 } },
      ],
    };
    const r = report({ cells: [cell], comparisons: compare([cell]), memory: mem, instructions: { tool: 'callgrind', build: BUILD, rows: chatRows, skipped: null, broken: [] } });
    const md = markdown(r);
    expect(md).toMatch(/\| gateway \| 40\.0 \| 168\.0 \| 170\.0 \| 128\.0 \| n\/a \| 4\.00 \| 2\.00 \|/);
    expect(md).toMatch(/holds \+2\.00 MB per request over plain nginx \(1\.00× the body\)/);
    const blocks = renderBlocks(r);
    expect(blocks.realistic).toMatch(/^\*\*Realistic latency/);
    expect(blocks.memory).toMatch(/^\*\*Memory/);
    expect(blocks['instruction-features']).toMatch(/all − no-auth \| 100,000 \|/);
    // The feature table is its own block: the instructions block stays the table it was.
    expect(blocks.instructions).not.toMatch(/all − no-auth/);
    expect(blocks.instructions).toContain(BUILD);
  });

  it('a ci snapshot fills the full-only blocks with a pointer to the full profile; a full one without them is refused', () => {
    const ci = renderBlocks({ ...report({}), meta: { ...report({}).meta, profile: 'ci' } });
    expect(ci.realistic).toMatch(/full profile only.*npm run bench -- --publish/);
    expect(ci.memory).toMatch(/full profile only/);
    const full = renderBlocks(report({}));
    expect(full.realistic).toBeUndefined();
    expect(full.memory).toBeUndefined();
  });

  it('the mock paces streams from its options and holds skimmed answers', async () => {
    const m = await startMockVllm({ name: 'paced', models: ['m'], latencyMs: 1, chunks: 20, chunkDelayMs: 1 });
    const s = await startMockVllm({ name: 'hold', models: ['m'], latencyMs: 1, skimBodies: true });
    try {
      const res = await fetch(`${m.url}/v1/chat/completions`, { method: 'POST', body: PAYLOADS['chat-paced'].body().replace(/"model":"[^"]*"/, '"model":"m"') });
      const events = (await res.text()).split('\n\n').filter((e) => e.startsWith('data: {')).map((e) => JSON.parse(e.slice(6)));
      expect(events.filter((e) => e.choices[0]?.delta?.content).length).toBe(20);
      expect(events[events.length - 1].usage.completion_tokens).toBe(20);
      const held = await fetch(`${s.url}/v1/chat/completions`, { method: 'POST', body: '{"model":"m"}' });
      expect(held.status).toBe(200);
      await held.text();
      expect(s.stats.peakInflight).toBe(1);
      expect(s.stats.inflight).toBe(0);
    } finally {
      await m.close();
      await s.close();
    }
  });
});

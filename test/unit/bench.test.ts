// The benchmark's own arithmetic and config edits (bench/), so a broken bench fails here rather than
// as odd numbers: percentiles, medians across rounds, the ratio regression check, the edits that
// switch the log hooks off for the feature-cost variants, the plain-nginx template and the PNG.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { LoadResult, median, medianResult, percentiles } from '../../bench/load';
import { pagePng } from '../../bench/png';
import { Baseline, compare, CellResult, regressions } from '../../bench/report';
import { LOGS_OFF, PAYLOADS } from '../../bench/scenarios';
import { nginxDir, projectRoot, renderNginxConf } from '../../tools/config';

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

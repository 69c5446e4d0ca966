import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { END_FACTS } from '../../njs/src/core/endFacts';
import { expandCombined, FAMILIES, latencyBucket, requestIncrements, sumTimes } from '../../njs/src/core/metrics';
import { bucketIndex, LATENCY_BUCKETS } from '../../njs/src/core/promText';
import { renderExposition } from '../../njs/src/core/promText';
import { projectRoot } from '../../tools/config';
import { histogram, parseExposition, sampleValue } from '../support/prometheus';

/** The facts as named fields; `facts()` lays them out as the split $gw_end_facts the recorder reads. */
interface RequestFacts {
  model: string; keyId: string; errorCode: string; status: string; requestTime: string; upstreamResponseTime: string;
  upstreamHeaderTime: string; stream: string; queueMs: string; ttftMs: string; promptTokens: string; completionTokens: string;
}

function facts(f: RequestFacts): string[] {
  const byVar: Record<string, string> = {
    status: f.status, request_time: f.requestTime, upstream_response_time: f.upstreamResponseTime,
    upstream_header_time: f.upstreamHeaderTime, gw_stream: f.stream, gw_queue_ms: f.queueMs, gw_ttft_ms: f.ttftMs,
    gw_prompt_tokens: f.promptTokens, gw_completion_tokens: f.completionTokens, gw_total_tokens: '', gw_error_code: f.errorCode,
    msec: '1764608000.123', gw_model: f.model, gw_end_plain: /[|"\\\n]/.test(f.model + f.keyId) ? '0' : '1',
  };
  return END_FACTS.map((n) => byVar[n]);
}

/** A number zone in memory: what requestIncrements sees of ngx.shared.gw_metrics. */
function zone(sums: Record<string, number>, full = false) {
  return {
    incr(k: string, v: number, init: number): number {
      if (full && !(k in sums)) throw new Error('SharedMemoryError: no memory');
      sums[k] = (sums[k] ?? init) + v;
      return sums[k];
    },
  };
}

const base: RequestFacts = {
  model: 'm', keyId: 'k1', errorCode: '', status: '200', requestTime: '0.120', upstreamResponseTime: '0.100',
  upstreamHeaderTime: '0.050', stream: '0', queueMs: '0', ttftMs: '', promptTokens: '11', completionTokens: '3',
};

const factsOf = facts;

function exposition(facts: RequestFacts[]) {
  const sums: Record<string, number> = {};
  for (const f of facts) requestIncrements(factsOf(f), f.keyId, zone(sums));
  return parseExposition(renderExposition(FAMILIES, expandCombined(Object.entries(sums)), []));
}

describe('request metrics', () => {
  it('adds nginx time lists per try and skips "-"', () => {
    expect(sumTimes('0.010')).toBeCloseTo(0.01);
    expect(sumTimes('0.010, 0.250 : 1.000')).toBeCloseTo(1.26);
    expect(sumTimes('-, 0.500')).toBeCloseTo(0.5);
    expect(sumTimes('-')).toBeNaN();
    expect(sumTimes('')).toBeNaN();
  });

  it('finds the latency bucket as bucketIndex does, at, around and between every bound', () => {
    const values = [0, 1e-9, Number.MAX_VALUE, Infinity];
    for (const b of LATENCY_BUCKETS) values.push(b, b * (1 - 1e-12), b * (1 + 1e-12), b / 2, b * 1.5);
    for (let v = 0; v < 1000; v += 0.0371) values.push(v);
    expect(values.map(latencyBucket)).toEqual(values.map((v) => bucketIndex(LATENCY_BUCKETS, v)));
  });

  it('classes statuses', () => {
    const statusClass = (status: string): string => {
      const sums: Record<string, number> = {};
      requestIncrements(facts({ ...base, status }), 'k1', zone(sums));
      const keys = Object.keys(sums).filter((k) => k.startsWith('gw_requests_total\n'));
      expect(keys).toHaveLength(1);
      return /status_class="([^"]*)"/.exec(keys[0])?.[1] ?? '';
    };
    expect(['200', '404', '499', '503', '', 'x'].map(statusClass)).toEqual(['2xx', '4xx', '4xx', '5xx', 'other', 'other']);
  });

  it('does not count requests that are not API requests (no model routed, no gateway error)', () => {
    const sums: Record<string, number> = {};
    expect(requestIncrements(facts({ ...base, model: '', errorCode: '' }), 'k1', zone(sums))).toBe(0);
    expect(sums).toEqual({});
  });

  it('counts a gateway refusal without a model under model="" with its duration only', () => {
    const e = exposition([{ ...base, model: '', errorCode: 'model_not_found', status: '404', upstreamResponseTime: '', upstreamHeaderTime: '' }]);
    expect(sampleValue(e.fams, 'gw_requests_total', { model: '', status_class: '4xx', key_id: 'k1' })).toBe(1);
    expect(histogram(e, 'gw_request_duration_seconds', { model: '' })!.count).toBe(1);
    expect(histogram(e, 'gw_upstream_response_duration_seconds', { model: '' })).toBeUndefined();
    expect(sampleValue(e.fams, 'gw_tokens_total', { model: '', type: 'prompt' })).toBeUndefined();
  });

  it('records latencies, tokens, queue wait and time to first token for a routed stream', () => {
    const e = exposition([
      { ...base, stream: '1', ttftMs: '250', queueMs: '1500' },
      { ...base },
      { ...base, status: '503', errorCode: 'model_unavailable', upstreamResponseTime: '', upstreamHeaderTime: '', promptTokens: '', completionTokens: '' },
    ]);
    expect(sampleValue(e.fams, 'gw_requests_total', { model: 'm', status_class: '2xx', key_id: 'k1' })).toBe(2);
    expect(sampleValue(e.fams, 'gw_requests_total', { model: 'm', status_class: '5xx', key_id: 'k1' })).toBe(1);
    expect(histogram(e, 'gw_request_duration_seconds', { model: 'm' })!.count).toBe(3);
    expect(histogram(e, 'gw_upstream_response_duration_seconds', { model: 'm' })!.count).toBe(2);
    const ttft = histogram(e, 'gw_time_to_first_token_seconds', { model: 'm' })!;
    expect(ttft.count).toBe(1);
    expect(ttft.sum).toBeCloseTo(0.25);
    expect(ttft.buckets['0.1']).toBe(0);
    expect(ttft.buckets['0.25']).toBe(1);
    // Refused before the queue: no wait observed; the two that reached the backend: 1.5 s and 0 s.
    const q = histogram(e, 'gw_queue_wait_seconds', { model: 'm' })!;
    expect(q.count).toBe(2);
    expect(q.sum).toBeCloseTo(1.5);
    expect(sampleValue(e.fams, 'gw_tokens_total', { model: 'm', type: 'prompt' })).toBe(22);
    expect(sampleValue(e.fams, 'gw_tokens_total', { model: 'm', type: 'completion' })).toBe(6);
  });

  it('a full zone drops only the updates of keys it cannot add, and says how many', () => {
    const sums: Record<string, number> = {};
    requestIncrements(facts(base), base.keyId, zone(sums));
    const before = { ...sums };
    const dropped = requestIncrements(facts({ ...base, model: 'other' }), base.keyId, zone(sums, true));
    expect(dropped).toBeGreaterThan(0);
    expect(sums).toEqual(before);
    expect(requestIncrements(facts(base), base.keyId, zone(sums, true))).toBe(0);
    expect(sums['gw_tokens_total\nmodel="m",type="prompt"']).toBe(22);
  });

  it('renders the same histograms whether the four bucket counts of a request took one key or four', () => {
    // One request per shape: all in one bucket without a wait (one combined key), buckets apart,
    // a queue wait, a backend time list; and keys written one per bucket (before the combined key
    // existed, still in the zone after a reload) add into the same series.
    const reqs = [base, { ...base, requestTime: '0.003', upstreamResponseTime: '0.002', upstreamHeaderTime: '0.001' },
      { ...base, requestTime: '2', upstreamResponseTime: '0.010, 0.050 : 1.5' }, { ...base, queueMs: '30' }];
    const sums: Record<string, number> = {};
    for (const f of reqs) requestIncrements(facts(f), f.keyId, zone(sums));
    // Only the second request has its three times in one bucket and no wait.
    expect(Object.keys(sums).filter((k) => k.includes('\nB'))).toEqual(['gw_request_duration_seconds\nmodel="m"\nB0']);
    const old: Record<string, number> = { 'gw_request_duration_seconds\nmodel="m"\nb5': 2, 'gw_queue_wait_seconds\nmodel="m"\nb0': 2,
      'gw_upstream_response_duration_seconds\nmodel="m"\nb5': 2, 'gw_upstream_header_duration_seconds\nmodel="m"\nb5': 2 };
    for (const [k, v] of Object.entries(old)) sums[k] = (sums[k] ?? 0) + v;
    const e = parseExposition(renderExposition(FAMILIES, expandCombined(Object.entries(sums)), []));
    const want = (fam: string) => histogram(e, fam, { model: 'm' })!;
    expect(want('gw_request_duration_seconds').count).toBe(6);
    expect(want('gw_request_duration_seconds').buckets['0.25']).toBe(5); // cumulative: 0.003, 0.120 twice, the two old ones
    expect(want('gw_request_duration_seconds').buckets['0.005']).toBe(1);
    expect(want('gw_request_duration_seconds').sum).toBeCloseTo(0.12 + 0.003 + 2 + 0.12);
    expect(want('gw_upstream_response_duration_seconds').count).toBe(6);
    expect(want('gw_upstream_response_duration_seconds').sum).toBeCloseTo(0.1 + 0.002 + 1.56 + 0.1);
    expect(want('gw_upstream_header_duration_seconds').count).toBe(6);
    expect(want('gw_upstream_header_duration_seconds').buckets['0.005']).toBe(1);
    const q = want('gw_queue_wait_seconds');
    expect(q.count).toBe(6);
    expect(q.buckets['0.005']).toBe(5);
    expect(q.sum).toBeCloseTo(0.03);
    // What each request adds, the same as one key per bucket would: compare with the expansion.
    expect(expandCombined([['gw_request_duration_seconds\nmodel="a\\nB"\nB3', 2]])).toEqual([
      ['gw_request_duration_seconds\nmodel="a\\nB"\nb3', 2], ['gw_upstream_response_duration_seconds\nmodel="a\\nB"\nb3', 2],
      ['gw_upstream_header_duration_seconds\nmodel="a\\nB"\nb3', 2], ['gw_queue_wait_seconds\nmodel="a\\nB"\nb0', 2]]);
  });

  it('follows Prometheus naming: snake_case, _total counters, _seconds durations, one entry each in docs/observability.md', () => {
    const readme = readFileSync(join(projectRoot, 'docs/observability.md'), 'utf8');
    for (const f of FAMILIES) {
      expect(f.name).toMatch(/^gw_[a-z0-9_]+$/);
      if (f.type === 'counter') expect(f.name).toMatch(/_total$/);
      if (f.type === 'histogram') expect(f.name).toMatch(/_seconds$/);
      expect(readme, `docs/observability.md lists ${f.name}`).toContain('`' + f.name + '`');
    }
  });
});

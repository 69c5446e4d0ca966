import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FAMILIES, RequestFacts, requestIncrements, statusClass, sumTimes } from '../../njs/src/core/metrics';
import { renderExposition } from '../../njs/src/core/promText';
import { projectRoot } from '../../tools/config';
import { histogram, parseExposition, sampleValue } from '../support/prometheus';

const base: RequestFacts = {
  model: 'm', keyId: 'k1', errorCode: '', status: '200', requestTime: '0.120', upstreamResponseTime: '0.100',
  upstreamHeaderTime: '0.050', stream: '0', queueMs: '0', ttftMs: '', promptTokens: '11', completionTokens: '3',
};

function exposition(facts: RequestFacts[]) {
  const sums: Record<string, number> = {};
  for (const f of facts) requestIncrements(f, (k, v) => { sums[k] = (sums[k] ?? 0) + v; });
  return parseExposition(renderExposition(FAMILIES, Object.entries(sums), []));
}

describe('request metrics', () => {
  it('adds nginx time lists per try and skips "-"', () => {
    expect(sumTimes('0.010')).toBeCloseTo(0.01);
    expect(sumTimes('0.010, 0.250 : 1.000')).toBeCloseTo(1.26);
    expect(sumTimes('-, 0.500')).toBeCloseTo(0.5);
    expect(sumTimes('-')).toBeNaN();
    expect(sumTimes('')).toBeNaN();
  });

  it('classes statuses', () => {
    expect(['200', '404', '499', '503', '', 'x'].map(statusClass)).toEqual(['2xx', '4xx', '4xx', '5xx', 'other', 'other']);
  });

  it('does not count requests that are not API requests (no model routed, no gateway error)', () => {
    const keys: string[] = [];
    requestIncrements({ ...base, model: '', errorCode: '' }, (k) => keys.push(k));
    expect(keys).toEqual([]);
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

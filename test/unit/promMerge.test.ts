import { describe, expect, it } from 'vitest';
import { mergeBackendMetrics } from '../../njs/src/core/promMerge';
import { histogram, parseExposition, sampleValue } from '../support/prometheus';

const vllm = (running: number) => `# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} ${running}
# HELP vllm:e2e_request_latency_seconds Histogram of e2e request latency in seconds.
# TYPE vllm:e2e_request_latency_seconds histogram
vllm:e2e_request_latency_seconds_bucket{engine="0",le="1.0",model_name="m"} 2.0
vllm:e2e_request_latency_seconds_bucket{engine="0",le="+Inf",model_name="m"} 3.0
vllm:e2e_request_latency_seconds_sum{engine="0",model_name="m"} 4.5
vllm:e2e_request_latency_seconds_count{engine="0",model_name="m"} 3.0
# HELP gw_requests_total not ours
# TYPE gw_requests_total counter
gw_requests_total 5
python_info{implementation="CPython",version="3.12.3"} 1.0
weird{path="a}b\\"c"} 1 1700000000000
`;

describe('merging backends\' own metrics', () => {
  it('labels every sample with its upstream and server and keeps each family contiguous', () => {
    const text = mergeBackendMetrics([
      { upstream: 'be_a', server: '10.0.0.1:8000', text: vllm(1) },
      { upstream: 'be_b', server: '10.0.0.2:8000', text: vllm(2).replace(/\n/g, '\r\n') },
      { upstream: 'be_c', server: '10.0.0.3:8000', text: '' },
    ]);
    const e = parseExposition(text);
    expect(sampleValue(e.fams, 'vllm:num_requests_running', { gw_upstream: 'be_b', gw_server: '10.0.0.2:8000', engine: '0', model_name: 'm' })).toBe(2);
    expect(histogram(e, 'vllm:e2e_request_latency_seconds', { gw_upstream: 'be_a', gw_server: '10.0.0.1:8000', engine: '0', model_name: 'm' }))
      .toEqual({ count: 3, sum: 4.5, buckets: { '1.0': 2, '+Inf': 3 } });
    expect(text.match(/# TYPE vllm:num_requests_running/g)).toHaveLength(1);
    expect(text).not.toContain('gw_requests_total');
    expect(text).toContain('weird{gw_upstream="be_a",gw_server="10.0.0.1:8000",path="a}b\\"c"} 1 1700000000000');
  });

  it('is empty when no backend answered', () => {
    expect(mergeBackendMetrics([{ upstream: 'a', server: 's', text: '' }])).toBe('');
  });
});

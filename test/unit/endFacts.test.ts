import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { END_FACTS, Fact, splitEndFacts } from '../../njs/src/core/endFacts';
import { projectRoot } from '../../tools/config';

const line = (model: string, errorCode = '') =>
  ['200', '0.012', '0.010, 0.001 : 0.002', '0.005', '1', '3', '40', '11', '5', '16', errorCode, '1764608000.123', '1', model].join('|');

describe('$gw_end_facts', () => {
  it('is the map logging-http.conf declares, field for field in END_FACTS order', () => {
    const conf = readFileSync(join(projectRoot, 'nginx/logging-http.conf'), 'utf8');
    const m = /map "" \$gw_end_facts \{\s*default "([^"]+)";/.exec(conf);
    expect(m).not.toBeNull();
    expect((m as RegExpExecArray)[1].split('|')).toEqual(END_FACTS.map((f) => '$' + f));
  });
  it('splits the fields in END_FACTS order; the model, last, keeps any "|" it holds', () => {
    const p = splitEndFacts(line('org/m|x|y'));
    expect(p).toEqual(['200', '0.012', '0.010, 0.001 : 0.002', '0.005', '1', '3', '40', '11', '5', '16', '', '1764608000.123', '1', 'org/m|x|y']);
    expect(END_FACTS).toHaveLength(Fact.count);
    const names: [string, Fact][] = [['status', Fact.status], ['request_time', Fact.requestTime],
      ['upstream_response_time', Fact.upstreamResponseTime], ['upstream_header_time', Fact.upstreamHeaderTime],
      ['gw_stream', Fact.stream], ['gw_queue_ms', Fact.queueMs], ['gw_ttft_ms', Fact.ttftMs], ['gw_prompt_tokens', Fact.promptTokens],
      ['gw_completion_tokens', Fact.completionTokens], ['gw_total_tokens', Fact.totalTokens], ['gw_error_code', Fact.errorCode],
      ['msec', Fact.msec], ['gw_end_plain', Fact.plain], ['gw_model', Fact.model]];
    for (const [name, i] of names) expect(END_FACTS[i]).toBe(name);
    expect(splitEndFacts(line('m'))?.[Fact.model]).toBe('m');
  });
  it('records nothing for a request that is not an API request, or a value of another shape', () => {
    expect(splitEndFacts(line(''))).toBeNull();
    expect(splitEndFacts(line('', 'model_not_found'))?.[Fact.errorCode]).toBe('model_not_found');
    expect(splitEndFacts('')).toBeNull();
    expect(splitEndFacts('200|0.1|x')).toBeNull();
  });
});

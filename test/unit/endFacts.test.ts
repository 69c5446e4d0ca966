import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { END_FACTS, parseEndFacts } from '../../njs/src/core/endFacts';
import { projectRoot } from '../../tools/config';

const line = (model: string, errorCode = '') =>
  ['200', '0.012', '0.010, 0.001 : 0.002', '0.005', '1', '3', '40', '11', '5', '16', errorCode, model].join('|');

describe('$gw_end_facts', () => {
  it('is the map logging-http.conf declares, field for field in END_FACTS order', () => {
    const conf = readFileSync(join(projectRoot, 'nginx/logging-http.conf'), 'utf8');
    const m = /map \$status \$gw_end_facts \{\s*default "([^"]+)";/.exec(conf);
    expect(m).not.toBeNull();
    expect((m as RegExpExecArray)[1].split('|')).toEqual(END_FACTS.map((f) => '$' + f));
  });
  it('splits the fields; the model, last, keeps any "|" it holds', () => {
    const f = parseEndFacts(line('org/m|x|y'), 'team-a');
    expect(f).toEqual({
      status: '200', requestTime: '0.012', upstreamResponseTime: '0.010, 0.001 : 0.002', upstreamHeaderTime: '0.005', stream: '1',
      queueMs: '3', ttftMs: '40', promptTokens: '11', completionTokens: '5', totalTokens: '16', errorCode: '', keyId: 'team-a', model: 'org/m|x|y',
    });
    expect(parseEndFacts(line('m'), '')?.model).toBe('m');
    // The key id comes apart from the line: a JWT subject may hold "|".
    expect(parseEndFacts(line('m'), 'jwt:auth0|123')?.keyId).toBe('jwt:auth0|123');
  });
  it('records nothing for a request that is not an API request, or a value of another shape', () => {
    expect(parseEndFacts(line(''), 'k')).toBeNull();
    expect(parseEndFacts(line('', 'model_not_found'), 'k')?.errorCode).toBe('model_not_found');
    expect(parseEndFacts('', '')).toBeNull();
    expect(parseEndFacts('200|0.1|x', '')).toBeNull();
  });
});

import { describe, expect, it } from 'vitest';
import { invalidLogLines, logLineProblems } from '../support/logSchema';

// A line as nginx wrote it in test/integration/logging.test.ts.
const LINE = '{"time":"2026-11-25T19:06:50+00:00","ts":1795633610.447,"request_id":"demo-1","remote_addr":"127.0.0.1","key_id":"","method":"POST","uri":"/v1/embeddings","endpoint":"embeddings","model":"BAAI/bge-m3","model_requested":"BAAI/bge-m3","stream":false,"status":200,"error_code":"","client_abort":false,"upstream":"be_embed","upstream_addr":"127.0.0.1:34971","upstream_status":"200","tier":"normal","queue_ms":0,"request_time":0.001,"upstream_connect_time":"0.000","upstream_header_time":"0.001","upstream_response_time":"0.001","ttft_ms":null,"request_length":303,"bytes_sent":559,"body_bytes_sent":230,"prompt_tokens":12,"completion_tokens":0,"total_tokens":12}';

function edit(f: (o: Record<string, unknown>) => void): string {
  const o = JSON.parse(LINE);
  f(o);
  return JSON.stringify(o);
}

describe('access-log schema (nginx/log-schema.json)', () => {
  it('accepts a real line, retries in the upstream fields, and nulls where nothing was measured', () => {
    expect(logLineProblems(LINE)).toEqual([]);
    expect(logLineProblems(edit((o) => {
      o.upstream_status = '502, 200'; o.upstream_connect_time = '0.001, 0.000'; o.upstream_header_time = '-, 0.004';
      o.prompt_tokens = null; o.completion_tokens = null; o.total_tokens = null; o.queue_ms = null; o.ttft_ms = 23;
    }))).toEqual([]);
  });
  it.each([
    ['a missing field', (o: Record<string, unknown>) => { delete o.total_tokens; }],
    ['an unknown field (e.g. a header or a key slipped in)', (o: Record<string, unknown>) => { o.authorization = 'Bearer sk-x'; }],
    ['a status as text', (o: Record<string, unknown>) => { o.status = '200'; }],
    ['an empty number rendered as ""', (o: Record<string, unknown>) => { o.prompt_tokens = ''; }],
    ['an unsafe request id', (o: Record<string, unknown>) => { o.request_id = 'a b'; }],
    ['an endpoint outside the set', (o: Record<string, unknown>) => { o.endpoint = 'chat/completions'; }],
    ['a time without offset', (o: Record<string, unknown>) => { o.time = '2026-11-25 19:06:50'; }],
  ])('rejects %s', (_n, f) => {
    expect(logLineProblems(edit(f)).length).toBeGreaterThan(0);
  });
  it('rejects a line that is not JSON (what nginx writes for a numeric field left empty)', () => {
    expect(invalidLogLines(LINE.replace('"prompt_tokens":12', '"prompt_tokens":') + '\n')).toHaveLength(1);
  });
});

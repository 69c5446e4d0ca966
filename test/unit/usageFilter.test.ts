import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { usageScanner } from '../../njs/src/core/usage';
import { projectRoot } from '../../tools/config';

type Filter = (r: unknown, data: Buffer, flags: { last: boolean }) => void;
/**
 * The handler under test, loaded by a path tsc does not follow: it is njs code (njs types, checked
 * by the root tsconfig), and this file is type-checked with Node's types.
 */
const handlerPath = join(projectRoot, 'njs/src/handlers/usage.ts');
const { usage } = (await import(/* @vite-ignore */ handlerPath)) as { usage: Filter };

/** A request as the body filter sees it: variables, sendBuffer, error; one object per request. */
function fakeRequest(contentType: string) {
  const sent: Buffer[] = [];
  const variables: Record<string, string> = { sent_http_content_type: contentType, request_time: '0.042' };
  const r = { variables, sendBuffer: (b: Buffer) => void sent.push(b), error: (m: string) => { throw new Error(m); } };
  return { r, variables, sent };
}

/** Runs the filter over the chunks as nginx would (a final empty `last` chunk) and returns the js_vars. */
function filter(chunks: Buffer[], contentType = 'application/json') {
  const f = fakeRequest(contentType);
  for (const c of chunks) usage(f.r, c, { last: false });
  usage(f.r, Buffer.alloc(0), { last: true });
  expect(Buffer.concat(f.sent).equals(Buffer.concat(chunks))).toBe(true);
  return f.variables;
}

/** What the general scanner alone finds: the reference the filter's fast path must agree with. */
function reference(chunks: Buffer[]) {
  const api = usageScanner();
  const s = api.create();
  for (const c of chunks) api.feed(s, c);
  return s.usage;
}

const json = (u: string, tail = '') => Buffer.from(`{"id":"x","choices":[{"message":{"content":"a } b"}}],"usage":${u}${tail}}`);

describe('gw.usage body filter', () => {
  it.each([
    ['flat (vLLM)', json('{"prompt_tokens":12,"completion_tokens":16,"total_tokens":28}')],
    ['nested details (OpenAI)', json('{"prompt_tokens":12,"completion_tokens":16,"total_tokens":28,"prompt_tokens_details":{"cached_tokens":0}}')],
    ['details first', json('{"prompt_tokens_details":{"cached_tokens":2},"prompt_tokens":12,"completion_tokens":16,"total_tokens":28}')],
    ['a "}" inside a string', json('{"note":"}","prompt_tokens":1,"completion_tokens":2,"total_tokens":3}')],
    ['fractional and missing fields', json('{"prompt_tokens":12.7,"completion_tokens":1}')],
    ['negative: not a count', json('{"prompt_tokens":-1,"completion_tokens":2,"total_tokens":1}')],
    ['null usage', json('null')],
    ['fields after usage', json('{"prompt_tokens":5,"completion_tokens":6,"total_tokens":11}', ',"prompt_logprobs":null')],
    ['no usage', Buffer.from('{"id":"x","choices":[]}')],
  ])('%s: same tokens as the general scanner, whole and split at every byte', (_n, body) => {
    const want = reference([body]);
    const expectVars = (v: Record<string, string>) => {
      if (want === null) expect([v.gw_prompt_tokens, v.gw_completion_tokens, v.gw_total_tokens]).toEqual([undefined, undefined, undefined]);
      else expect([v.gw_prompt_tokens, v.gw_completion_tokens, v.gw_total_tokens]).toEqual([String(want.prompt), String(want.completion), String(want.total)]);
    };
    expectVars(filter([body]));
    for (let i = 1; i < body.length; i++) expectVars(filter([body.subarray(0, i), body.subarray(i)]));
  });

  it('a stream: gw_stream and time to first token once, tokens from the final event', () => {
    const body = readFileSync(join(projectRoot, 'test/fixtures/usage/vllm-chat-include-usage.sse'));
    const events = body.toString('utf8').split(/(?<=\n\n)/).map((e) => Buffer.from(e));
    const v = filter(events, 'text/event-stream');
    const want = reference([body])!;
    expect(v.gw_stream).toBe('1');
    expect(v.gw_ttft_ms).toBe('42');
    expect([v.gw_prompt_tokens, v.gw_completion_tokens, v.gw_total_tokens]).toEqual([String(want.prompt), String(want.completion), String(want.total)]);
  });

  it('state does not leak into the next request, even when a response ends without `last`', () => {
    const a = fakeRequest('text/event-stream');
    usage(a.r, Buffer.from('data: {"usage":{"prompt_tokens":1,'), { last: false }); // client gone mid-object
    const v = filter([json('{"prompt_tokens":7,"completion_tokens":8,"total_tokens":15}')]);
    expect([v.gw_prompt_tokens, v.gw_completion_tokens, v.gw_total_tokens, v.gw_stream, v.gw_ttft_ms]).toEqual(['7', '8', '15', undefined, undefined]);
  });
});

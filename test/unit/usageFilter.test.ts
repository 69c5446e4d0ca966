import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { usageScanner } from '../../njs/src/core/usage';
import { projectRoot } from '../../tools/config';
import { usage as beforeUsage } from './usageFilterBefore';

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

// The filter against its previous version (usageFilterBefore.ts): the fast path may take a chunk
// only where the old code decided the same. Both keep module state across requests (QuickJS reuses
// its context), so each run feeds them the same sequence of requests, some cut off without `last`.
type Sent = { bytes: string; last: boolean; flush: boolean | undefined };
function recordingRequest(contentType: string | undefined, requestTime = '1.500') {
  const sent: Sent[] = [];
  const variables: Record<string, string | undefined> = { sent_http_content_type: contentType, request_time: requestTime };
  const r = {
    variables,
    sendBuffer: (b: Buffer, o: { last: boolean; flush?: boolean }) => void sent.push({ bytes: b.toString('hex'), last: o.last, flush: o.flush }),
    error: (m: string) => { throw new Error(m); },
  };
  return { r, variables, sent };
}

const count = fc.oneof(
  fc.nat({ max: 100000 }).map(String),
  fc.constantFrom('0', '00', '012', '1.5', '2.0', '1e3', '-1', '-0', '12345678901234567890', '999999999999999', '9007199254740993', 'null', 'true', '"7"', '{}', '[1]'),
);
const usageKey = fc.constantFrom('prompt_tokens', 'completion_tokens', 'total_tokens', 'prompt_tokens_details', 'note', 'prompt_tokens ');
const ws = fc.constantFrom('', '', '', ' ', '\n  ');
const usageObject = fc.oneof(
  // As vLLM and the mock write it, in either order, sometimes with details.
  fc.tuple(count, count, count, fc.boolean(), fc.boolean()).map(([p, c, t, vllm, details]) =>
    '{"prompt_tokens":' + p + (vllm ? ',"total_tokens":' + t + ',"completion_tokens":' + c : ',"completion_tokens":' + c + ',"total_tokens":' + t)
    + (details ? ',"prompt_tokens_details":null' : '') + '}'),
  fc.array(fc.tuple(usageKey, count, ws), { maxLength: 5 }).map((fields) => '{' + fields.map(([k, v, s]) => s + '"' + k + '"' + s + ':' + s + v).join(',') + '}'),
  fc.constantFrom('null', '{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3,"prompt_tokens_details":{"cached_tokens":0}}', '{"note":"}","prompt_tokens":1,"completion_tokens":2,"total_tokens":3}', '{"prompt_tokens":1,'),
);
const jsonBody = fc.tuple(usageObject, fc.constantFrom('', ',"prompt_logprobs":null', ',"u":1', ',"usage":null', ',"x":"\\"usage"', '\n', '"', '"u', ',"usage":{"prompt_tokens":5,"completion_tokens":6,"total_tokens":11}'), fc.boolean(), ws).map(
  ([u, tail, earlier, s]) => '{"id":"x",' + (earlier ? '"usage":{"prompt_tokens":9,"completion_tokens":9,"total_tokens":18},' : '') + '"choices":[{"message":{"content":"a } \\"usage\\" b ggggggg"}}],' + s + '"usage"' + s + ':' + s + u + tail + '}',
);
const sseBody = fc.array(usageObject, { minLength: 1, maxLength: 3 }).map((us) =>
  us.map((u, i) => 'data: {"id":"x","choices":[' + (i === us.length - 1 ? '' : '{"delta":{"content":"' + ['hi', 'gggggggg', 'g"usage'][i % 3] + '"},"logprobs":null}') + '],"usage":' + u + '}\n\n').join('') + 'data: [DONE]\n\n');
const response = fc.record({
  contentType: fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/event-stream', 'text/event-stream; charset=utf-8', 'text/plain', undefined),
  body: fc.oneof(jsonBody, sseBody, fc.constant('')),
  cuts: fc.array(fc.nat(), { maxLength: 4 }),
  ends: fc.constantFrom(true, true, true, false),
  // $request_time as nginx writes it: seconds with 3 decimals.
  requestTime: fc.oneof(
    fc.tuple(fc.nat({ max: 100000000 }), fc.nat({ max: 999 })).map(([s, ms]) => s + '.' + String(ms).padStart(3, '0')),
    fc.constantFrom('0.000', '0.001', '0.499', '0.500', '0.0005', '', '-'),
  ),
});

function chunksOf(body: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => (body.length ? c % (body.length + 1) : 0)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const c of at) {
    out.push(body.subarray(from, c));
    from = c;
  }
  out.push(body.subarray(from));
  return out;
}

describe('gw.usage body filter against its previous version', () => {
  it('same js_vars, same bytes and sendBuffer flags, for random responses, splits and request sequences', async () => {
    // Fresh module instances for both, so that their state starts equal.
    const now = (await import(/* @vite-ignore */ handlerPath + '?differential')) as { usage: Filter };
    const before = await import('./usageFilterBefore');
    fc.assert(
      fc.property(fc.array(response, { minLength: 1, maxLength: 4 }), (responses) => {
        for (const res of responses) {
          const body = Buffer.from(res.body);
          const chunks = chunksOf(body, res.cuts);
          const a = recordingRequest(res.contentType, res.requestTime);
          const b = recordingRequest(res.contentType, res.requestTime);
          for (const c of chunks) {
            now.usage(a.r, c, { last: false });
            before.usage(b.r, c, { last: false });
          }
          if (res.ends) {
            now.usage(a.r, Buffer.alloc(0), { last: true });
            before.usage(b.r, Buffer.alloc(0), { last: true });
          }
          expect(a.variables).toEqual(b.variables);
          expect(a.sent).toEqual(b.sent);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('every split in two of the usual answers, as vLLM and the mock write them', () => {
    for (const u of [
      '{"prompt_tokens":12,"completion_tokens":1,"total_tokens":13}',
      '{"prompt_tokens":9,"total_tokens":19,"completion_tokens":10,"prompt_tokens_details":null}',
    ]) {
      const body = Buffer.from('{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],"usage":' + u + ',"prompt_logprobs":null}');
      for (let i = 0; i <= body.length; i++) {
        const chunks = [body.subarray(0, i), body.subarray(i)];
        const a = recordingRequest('application/json');
        const b = recordingRequest('application/json');
        for (const c of chunks) {
          usage(a.r, c, { last: false });
          beforeUsage(b.r, c, { last: false });
        }
        usage(a.r, Buffer.alloc(0), { last: true });
        beforeUsage(b.r, Buffer.alloc(0), { last: true });
        expect(a.variables).toEqual(b.variables);
        expect(a.sent).toEqual(b.sent);
        expect(a.variables.gw_total_tokens).toBe(u.indexOf('"total_tokens":13') >= 0 ? '13' : '19');
      }
    }
  });
});

describe('gw_ttft_ms', () => {
  it('is Math.round of $request_time in ms for every value nginx can write up to 10^5 s', () => {
    // The filter's arithmetic for every millisecond count below 10^6 (a mismatch runs the filter,
    // which then fails), then the filter itself on a sweep of larger ones.
    const check = (s: string) => {
      const g = recordingRequest('text/event-stream', s);
      usage(g.r, Buffer.from('data: {}\n\n'), { last: true });
      expect(g.variables.gw_ttft_ms).toBe(String(Math.round(+s * 1000)));
    };
    for (let ms = 0; ms < 1000000; ms += 1) {
      const s = Math.floor(ms / 1000) + '.' + String(ms % 1000).padStart(3, '0');
      const n = +s * 1000 + 0.5;
      if (n - (n % 1) !== Math.round(+s * 1000)) check(s);
    }
    for (let ms = 1000000; ms < 100000000000; ms += 999983) check(Math.floor(ms / 1000) + '.' + String(ms % 1000).padStart(3, '0'));
    check('0.000');
    check('0.499');
  });
});

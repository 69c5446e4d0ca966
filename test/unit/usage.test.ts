import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { lastUsageKey, Usage, usageScanner } from '../../njs/src/core/usage';

const { create: newUsageScanner, feed: feedUsage, parse: parseUsageObject, probe: probeUsage } = usageScanner();
import { projectRoot } from '../../tools/config';

const dir = join(projectRoot, 'test/fixtures/usage');
const fixture = (f: string) => readFileSync(join(dir, f));

const FIXTURES: [string, Usage | null][] = [
  ['vllm-chat-include-usage.sse', { prompt: 17, completion: 10, total: 27 }],
  ['openai-chat-include-usage.sse', { prompt: 19, completion: 10, total: 29 }],
  ['vllm-chat-continuous-usage.sse', { prompt: 16, completion: 3, total: 19 }],
  ['vllm-completions-include-usage.sse', { prompt: 7, completion: 2, total: 9 }],
  ['vllm-chat-no-usage.sse', null],
  ['vllm-chat.json', { prompt: 1312, completion: 218, total: 1530 }],
  ['vllm-embeddings.json', { prompt: 12, completion: 0, total: 12 }],
  // Recorded from llama.cpp's llama-server (record-llamacpp.ts): U+FFFD and \u00XX escapes in the
  // content, a "timings" object beside "usage", and no completion_tokens for embeddings.
  ['llamacpp-b11669-chat-include-usage.sse', { prompt: 76, completion: 12, total: 88 }],
  ['llamacpp-b11669-chat-no-usage.sse', null],
  ['llamacpp-b11669-chat.json', { prompt: 76, completion: 12, total: 88 }],
  ['llamacpp-b11669-completions-include-usage.sse', { prompt: 26, completion: 8, total: 34 }],
  ['llamacpp-b11669-embeddings.json', { prompt: 17, completion: 0, total: 17 }],
  ['llamacpp-b11669-error-context.json', null],
];

function scan(chunks: Buffer[]): Usage | null {
  const s = newUsageScanner();
  for (const c of chunks) feedUsage(s, c);
  return s.usage;
}

function splitEvery(b: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; i += size) out.push(b.subarray(i, i + size));
  return out;
}

describe('usage scanner on recorded bodies', () => {
  for (const [file, want] of FIXTURES) {
    const body = fixture(file);
    it(`${file}: whole body`, () => {
      expect(scan([body])).toEqual(want);
    });
    it(`${file}: SSE events as they arrive (one chunk per event)`, () => {
      const events = body.toString('utf8').split(/(?<=\n\n)/).map((e) => Buffer.from(e));
      expect(scan(events)).toEqual(want);
    });
    it(`${file}: split in two at every byte`, () => {
      for (let i = 1; i < body.length; i++) {
        expect(scan([body.subarray(0, i), body.subarray(i)]), `split at ${i}`).toEqual(want);
      }
    });
    it(`${file}: 1, 2, 3, 5 and 7-byte chunks`, () => {
      for (const size of [1, 2, 3, 5, 7]) expect(scan(splitEvery(body, size)), `size ${size}`).toEqual(want);
    });
  }

  it('reports a change only when a new usage object completes', () => {
    const s = newUsageScanner();
    const body = fixture('vllm-chat-include-usage.sse');
    const events = body.toString('utf8').split(/(?<=\n\n)/).map((e) => Buffer.from(e));
    const changed = events.map((e) => feedUsage(s, e));
    expect(changed).toEqual([false, false, false, false, true, false]);
  });

  it('keeps nothing across chunks that cannot start a key', () => {
    const s = newUsageScanner();
    feedUsage(s, Buffer.from('data: {"choices":[{"delta":{"content":"hi"}}]}\n\n'));
    expect(s.carry).toBe('');
    expect(s.capture).toBeNull();
    feedUsage(s, Buffer.from('data: {"id":"x","usa'));
    expect(s.carry).toBe('"usa');
  });

  it('gives up on an object longer than a usage object can be, and recovers on the next one', () => {
    const s = newUsageScanner();
    feedUsage(s, Buffer.from('{"usage":{"prompt_tokens":1,"x":"' + 'a'.repeat(5000) + '"}}'));
    expect(s.usage).toBeNull();
    expect(s.capture).toBeNull();
    feedUsage(s, Buffer.from('{"usage":{"prompt_tokens":1,'));
    expect(s.capture).not.toBeNull();
    for (let i = 0; i < 10; i++) feedUsage(s, Buffer.from('"x":"' + 'a'.repeat(500) + '",'));
    expect(s.capture).toBeNull();
    feedUsage(s, Buffer.from('data: {"usage":{"prompt_tokens":4,"completion_tokens":5}}\n\n'));
    expect(s.usage).toEqual({ prompt: 4, completion: 5, total: 9 });
  });

  it('scans a large JSON body without copying it (usage at the end)', () => {
    const big = Buffer.from(JSON.stringify({ data: [{ embedding: new Array(200000).fill(0.123) }], usage: { prompt_tokens: 3, total_tokens: 3 } }));
    expect(big.length).toBeGreaterThan(1_000_000);
    expect(scan(splitEvery(big, 16384))).toEqual({ prompt: 3, completion: 0, total: 3 });
  });
});

describe('probeUsage / parseUsageObject', () => {
  it.each([
    ['"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}', 'done'],
    ['"usage" : \n { "prompt_tokens" : 1 }', 'done'],
    ['"usage":{"prompt_tokens":1,"d":{"x":"}"}}', 'done'],
    ['"usage":{"prompt_tokens":1,"d":"}"}', 'done'],
    ['"usage":null', 'bad'],
    ['"usage","x"', 'bad'],
    ['"usage":{}', 'bad'],
    ['"usage":{"prompt_tokens":"7"}', 'bad'],
    ['"usage"', 'open'],
    ['"usage":', 'open'],
    ['"usage":{"prompt_tokens":1', 'open'],
    ['"usage":{"a":"}', 'open'],
  ])('%s → %s', (text, state) => {
    expect(probeUsage(text).state).toBe(state);
  });

  it('derives missing fields', () => {
    expect(parseUsageObject('{"prompt_tokens":5}')).toEqual({ prompt: 5, completion: 0, total: 5 });
    expect(parseUsageObject('{"prompt_tokens":5,"completion_tokens":2}')).toEqual({ prompt: 5, completion: 2, total: 7 });
    expect(parseUsageObject('{"prompt_tokens":-1}')).toBeNull();
    expect(parseUsageObject('[1]')).toBeNull();
    expect(parseUsageObject('{')).toBeNull();
  });
});

describe('feedUsage fast path', () => {
  // The fast path takes a chunk only when it is sure; otherwise the general path decides. Both must
  // agree on any body cut anywhere, including keys and objects split across chunks.
  const bodies = [
    '{"id":"x","usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}',
    '{"usage":{"prompt_tokens":3,"completion_tokens":4},"x":"\\"usage\\":{\\"prompt_tokens\\":99}"}',
    '{"usage": {"prompt_tokens":1}, "usage2":{"prompt_tokens":5}}',
    '{"usage":{"prompt_tokens":2,"prompt_tokens_details":{"cached_tokens":1}}}',
    '{"usage":{"prompt_tokens":"x"}}',
    '{"usage":null}',
    'data: {"usage":{"prompt_tokens":1}}\n\ndata: {"usage":{"prompt_tokens":2,"completion_tokens":3}}\n\ndata: [DONE]\n\n',
  ];
  it('finds the same usage as a byte-by-byte feed, for every single cut', () => {
    for (const text of bodies) {
      const b = Buffer.from(text);
      const oneByOne = scan(splitEvery(b, 1));
      expect(scan([b])).toEqual(oneByOne);
      for (let cut = 1; cut < b.length; cut++) expect(scan([b.subarray(0, cut), b.subarray(cut)])).toEqual(oneByOne);
    }
  });
  it('reads a fractional count as its floor and refuses negative or infinite ones', () => {
    expect(scan([Buffer.from('{"usage":{"prompt_tokens":2.7,"completion_tokens":1}}')])).toEqual({ prompt: 2, completion: 1, total: 3 });
    expect(scan([Buffer.from('{"usage":{"prompt_tokens":-1}}')])).toBeNull();
    expect(scan([Buffer.from('{"usage":{"prompt_tokens":1e999}}')])).toBeNull();
  });
});

describe('lastUsageKey', () => {
  it('finds what buf.lastIndexOf(\'"usage"\') finds, in any bytes and however many `g`s come after the key', () => {
    const piece = fc.constantFrom('"usage"', '"usage', 'usage"', 'g', 'gg', '"u', 'sag', 'e"', '"', 'x', 'logprobs', 'ggggggg', '\u00e9g');
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 30 }), fc.uint8Array({ maxLength: 8 }), (parts, noise) => {
        const buf = Buffer.concat([Buffer.from(noise), Buffer.from(parts.join(''))]);
        expect(lastUsageKey(buf)).toBe(buf.lastIndexOf('"usage"'));
      }),
      { numRuns: 5000 },
    );
  });
});

import { describe, expect, it } from 'vitest';
import { findModel, PARSE_WHOLE_MAX, scanModel, scanModelTail, TAIL_SCAN_MIN } from '../../njs/src/core/modelScan';
import { ocrBody } from '../support/clients';

/**
 * Deterministic random JSON values that like "model" keys and tricky strings, nested a few levels,
 * for checking the scanners against JSON.parse.
 */
function jsonGenerator(seed: number, strs: string[]): { rnd: () => number; value: (depth: number) => unknown } {
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const value = (d: number): unknown => {
    const k = Math.floor(rnd() * (d > 2 ? 4 : 6));
    if (k === 0) return strs[Math.floor(rnd() * strs.length)];
    if (k === 1) return Math.floor(rnd() * 1000) / 10;
    if (k === 2) return rnd() > 0.5 ? null : true;
    if (k === 3) return d > 2 ? 'x' : 'leaf';
    if (k === 4) return [value(d + 1), value(d + 1)];
    return { model: value(d + 1), [strs[Math.floor(rnd() * strs.length)]]: value(d + 1) };
  };
  return { rnd, value };
}

function scan(s: string | Buffer) {
  return scanModel(typeof s === 'string' ? Buffer.from(s) : s);
}

describe('scanModel', () => {
  const ok: [string, string, string][] = [
    ['plain', '{"model":"m1","messages":[]}', 'm1'],
    ['model last', '{"messages":[{"role":"user","content":"x"}],"model":"m2"}', 'm2'],
    ['whitespace everywhere', ' \n\t{ "model" \r\n :  "m3" , "x" : 1 } \n', 'm3'],
    ['escaped quote in value', '{"model":"a\\"b"}', 'a"b'],
    ['unicode escape in value', '{"model":"caf\\u00e9"}', 'café'],
    ['escaped key', '{"mod\\u0065l":"m4"}', 'm4'],
    ['raw utf-8', '{"model":"模型/ü"}', '模型/ü'],
    ['nested model ignored', '{"metadata":{"model":"inner"},"model":"outer"}', 'outer'],
    ['nested model after', '{"model":"outer","tools":[{"model":"inner"}]}', 'outer'],
    ['"model" text inside strings', '{"prompt":"\\"model\\":\\"evil\\"","model":"good"}', 'good'],
    ['backslash run before quote', '{"p":"x\\\\","model":"m5"}', 'm5'],
    ['duplicate key: last wins like JSON.parse', '{"model":"first","model":"second"}', 'second'],
    ['slash model name', '{"model":"nanonets/Nanonets-OCR2-3B"}', 'nanonets/Nanonets-OCR2-3B'],
    ['literals and numbers', '{"a":true,"b":false,"c":null,"d":-1.5e+3,"e":0,"model":"m6"}', 'm6'],
    ['empty nested containers', '{"a":{},"b":[],"c":[{}],"model":"m7"}', 'm7'],
    ['utf-8 BOM', '\ufeff{"model":"m8"}', 'm8'],
  ];
  for (const [name, body, model] of ok) {
    it(`finds the model: ${name}`, () => {
      const r = scan(body);
      expect(r).toMatchObject({ ok: true, model });
      if (r.ok && !body.startsWith('\ufeff')) expect(JSON.parse(body).model).toBe(model);
    });
  }

  it('reports the byte range of the value for rewriting', () => {
    const body = Buffer.from('{"x":"é","model":"m","y":1}');
    const r = scan(body);
    expect(r.ok).toBe(true);
    if (r.ok) expect(body.subarray(r.start, r.end).toString()).toBe('"m"');
  });

  it('reports stream: true only for a top-level true', () => {
    expect(scan('{"model":"m","stream":true}')).toMatchObject({ ok: true, stream: true });
    expect(scan('{"stream":true,"model":"m"}')).toMatchObject({ ok: true, stream: true });
    expect(scan('{"model":"m","stream":false}')).toMatchObject({ ok: true, stream: false });
    expect(scan('{"model":"m","x":{"stream":true}}')).toMatchObject({ ok: true, stream: false });
  });

  const bad: [string, string, string][] = [
    ['empty body', '', 'invalid_json'],
    ['only whitespace', '  \n', 'invalid_json'],
    ['array', '[{"model":"m"}]', 'invalid_json'],
    ['truncated', '{"model":', 'invalid_json'],
    ['truncated string', '{"model":"m', 'invalid_json'],
    ['unterminated object', '{"model":"m"', 'invalid_json'],
    ['trailing garbage', '{"model":"m"}x', 'invalid_json'],
    ['missing comma', '{"model":"m" "x":1}', 'invalid_json'],
    ['trailing comma', '{"model":"m",}', 'invalid_json'],
    ['unquoted key', '{model:"m"}', 'invalid_json'],
    ['single quotes', "{'model':'m'}", 'invalid_json'],
    ['bad literal', '{"a":tru,"model":"m"}', 'invalid_json'],
    ['mismatched brackets', '{"a":[1},"model":"m"}', 'invalid_json'],
    ['not json', 'model=m', 'invalid_json'],
    ['bad escape in model', '{"model":"\\x"}', 'invalid_json'],
    ['missing model', '{"messages":[]}', 'missing_model'],
    ['empty object', '{}', 'missing_model'],
    ['nested only', '{"metadata":{"model":"m"}}', 'missing_model'],
    ['number model', '{"model":42}', 'invalid_model'],
    ['null model', '{"model":null}', 'invalid_model'],
    ['object model', '{"model":{"name":"m"}}', 'invalid_model'],
    ['empty model', '{"model":""}', 'invalid_model'],
  ];
  for (const [name, body, error] of bad) {
    it(`rejects: ${name} → ${error}`, () => {
      expect(scan(body)).toMatchObject({ ok: false, error });
      // The small-body JSON.parse path gives the same answer.
      expect(findModel(Buffer.from(body))).toMatchObject({ ok: false, error });
    });
  }

  it('findModel agrees with the scanner on both sides of the size threshold', () => {
    for (const [, body, model] of ok) expect(findModel(Buffer.from(body))).toMatchObject({ ok: true, model });
    const big = JSON.stringify({ pad: 'x'.repeat(PARSE_WHOLE_MAX), stream: true, model: 'm' });
    expect(findModel(Buffer.from(big))).toMatchObject({ ok: true, model: 'm', stream: true, start: big.indexOf('"m"') });
    expect(findModel(Buffer.from('{"model":"m","stream":true}'))).toMatchObject({ ok: true, model: 'm', stream: true, start: -1 });
  });

  it('refuses a model value over 1 KB without walking it', () => {
    const body = JSON.stringify({ model: 'm'.repeat(5000), pad: 'x'.repeat(PARSE_WHOLE_MAX) });
    expect(scan(body)).toMatchObject({ ok: false, error: 'invalid_model' });
  });

  it('agrees with JSON.parse on a 20 MB OCR body with the model last', () => {
    const body = Buffer.from(ocrBody('nanonets/Nanonets-OCR2-3B', 15_000_000, { modelLast: true }));
    expect(body.length).toBeGreaterThan(20_000_000);
    expect(scan(body)).toMatchObject({ ok: true, model: 'nanonets/Nanonets-OCR2-3B' });
  });

  it('agrees with JSON.parse on generated bodies', () => {
    const { rnd, value } = jsonGenerator(42, ['model', '"model"', 'a\\b', 'é', '\u2028', '{[', '"}', '']);
    for (let n = 0; n < 300; n++) {
      const obj: Record<string, unknown> = { a: value(0), b: value(0) };
      if (rnd() > 0.2) obj.model = rnd() > 0.2 ? `m${n}` : value(0);
      const text = JSON.stringify(obj, null, n % 3);
      const r = scan(text);
      expect(findModel(Buffer.from(text)).ok).toBe(r.ok);
      const m = JSON.parse(text).model;
      if (typeof m === 'string' && m.length > 0) expect(r).toMatchObject({ ok: true, model: m });
      else expect(r.ok).toBe(false);
    }
  });
});

describe('scanModelTail (bodies of TAIL_SCAN_MIN and more: the model read from the end)', () => {
  const pad = 'x'.repeat(TAIL_SCAN_MIN);
  const at = (b: string, m: string) => b.lastIndexOf(JSON.stringify(m));

  it('finds the model after the messages, as the OpenAI SDKs send it, with its byte range and a later "stream"', () => {
    const body = JSON.stringify({ messages: [{ role: 'user', content: pad }], model: 'org/m-1', max_tokens: 5, stream: true, n: null });
    const r = scanModelTail(Buffer.from(body));
    expect(r).toEqual({ ok: true, model: 'org/m-1', start: at(body, 'org/m-1'), end: at(body, 'org/m-1') + '"org/m-1"'.length, stream: true });
    expect(findModel(Buffer.from(body))).toEqual(r);
  });

  it('skips a nested "model" in what follows the model (a tool schema) and takes the top-level one', () => {
    const body = JSON.stringify({ messages: [{ content: pad }], model: 'm', tools: [{ function: { parameters: { properties: { model: { type: 'string' } }, model: 'not-this' } } }] });
    expect(scanModelTail(Buffer.from(body))).toMatchObject({ ok: true, model: 'm' });
  });

  it('refuses a nested "model" with no top-level one after it, and the full scan answers', () => {
    const body = JSON.stringify({ messages: [{ content: pad }], metadata: { model: 'x' } });
    expect(scanModelTail(Buffer.from(body))).toBeNull();
    expect(findModel(Buffer.from(body))).toMatchObject({ ok: false, error: 'missing_model' });
  });

  it('leaves a model-first body, a non-string model and trailing garbage to the full scan', () => {
    const first = JSON.stringify({ model: 'm', messages: [{ content: pad }] });
    expect(scanModelTail(Buffer.from(first))).toBeNull();
    expect(findModel(Buffer.from(first))).toMatchObject({ ok: true, model: 'm', stream: false });
    const num = JSON.stringify({ messages: [pad], model: 42 });
    expect(scanModelTail(Buffer.from(num))).toBeNull();
    expect(findModel(Buffer.from(num))).toMatchObject({ ok: false, error: 'invalid_model' });
    const trailing = JSON.stringify({ messages: [pad], model: 'm' }) + 'x';
    expect(scanModelTail(Buffer.from(trailing))).toBeNull();
    expect(findModel(Buffer.from(trailing))).toMatchObject({ ok: false, error: 'invalid_json' });
  });

  it('does not take "model" inside a string for a key', () => {
    const body = `{"messages":["${pad}"],"note":"say \\"model\\": \\"fake\\"","x":"\\"model","model":"real"}`;
    expect(JSON.parse(body).model).toBe('real');
    expect(scanModelTail(Buffer.from(body))).toMatchObject({ ok: true, model: 'real' });
    const only = `{"messages":["${pad}"],"x":"\\"model"}`;
    expect(scanModelTail(Buffer.from(only))).toBeNull();
  });

  it('does not validate what comes before the model (the backend does): the documented difference', () => {
    const body = `{"messages":[{"content":"${pad}"}}],"model":"m"}`; // an extra "}" in the prefix
    expect(() => JSON.parse(body)).toThrow();
    expect(scanModelTail(Buffer.from(body))).toMatchObject({ ok: true, model: 'm' });
    expect(scanModel(Buffer.from(body))).toMatchObject({ ok: false, error: 'invalid_json' });
  });

  it('agrees with JSON.parse on generated large bodies whenever it answers', () => {
    const { rnd, value } = jsonGenerator(7, ['model', '"model"', '\\"model', 'a\\b', '{[', '"}', '']);
    let answered = 0;
    for (let n = 0; n < 200; n++) {
      const obj: Record<string, unknown> = { messages: [pad], a: value(0) };
      if (rnd() > 0.2) obj.model = rnd() > 0.2 ? `m${n}` : value(0);
      obj.b = rnd() > 0.5 ? value(0) : undefined;
      const text = JSON.stringify(obj, null, n % 3);
      const r = scanModelTail(Buffer.from(text));
      if (r === null) continue;
      answered++;
      expect(r).toMatchObject({ ok: true, model: JSON.parse(text).model });
    }
    expect(answered).toBeGreaterThan(50);
  });
});

import { describe, expect, it } from 'vitest';
import { findModel, PARSE_WHOLE_MAX, scanModel } from '../../njs/src/core/modelScan';
import { validUtf8 } from '../../njs/src/core/bytes';
import { ocrBody } from '../../tools/clients';

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
    ['duplicate key', '{"model":"first","model":"second"}', 'invalid_model'],
    ['duplicate key spelled with an escape', '{"model":"A","mod\\u0065l":"B"}', 'invalid_model'],
    ['duplicate key, every letter escaped', '{"\\u006D\\u006f\\u0064\\u0065\\u006C":"B","model":"A"}', 'invalid_model'],
    ['null model after the real one', '{"model":"A","model":null}', 'invalid_model'],
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

  it('reads a Buffer that is a view into a larger buffer (string ends are searched relative to the view)', () => {
    const text = '{"messages":[{"content":"a\\"b\\\\"}],"image":"' + 'QUFB'.repeat(5000) + '","model":"m6"}';
    const plain = scan(text);
    expect(plain).toMatchObject({ ok: true, model: 'm6' });
    // Quotes and backslashes outside the view, on both sides, must not be seen.
    for (const pad of ['"', '\\"', '"\\', '"x"']) {
      const whole = Buffer.from(pad + text + pad);
      const view = whole.subarray(Buffer.byteLength(pad), whole.length - Buffer.byteLength(pad));
      expect(view.byteOffset).toBeGreaterThan(0);
      expect(scan(view)).toEqual(plain);
    }
    const cut = Buffer.from(text + '"');
    expect(scan(cut.subarray(0, cut.length - 30))).toMatchObject({ ok: false, error: 'invalid_json' });
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

describe('one rule on every size path (issue 13)', () => {
  const pad = (n: number) => 'x'.repeat(n);
  const sizes = [0, PARSE_WHOLE_MAX, 300 * 1024];

  it('refuses an escaped duplicate "model" at any size, before or after the real one (was: 256 KB+ took the literal one)', () => {
    for (const n of sizes) {
      for (const body of [
        `{"messages":[{"content":"${pad(n)}"}],"model":"A","mod\\u0065l":"B"}`,
        `{"mod\\u0065l":"B","messages":[{"content":"${pad(n)}"}],"model":"A"}`,
        `{"messages":["${pad(n)}"],"model":"A","max_tokens":5,"model":null}`,
      ]) {
        expect(() => JSON.parse(body)).not.toThrow();
        expect(findModel(Buffer.from(body))).toMatchObject({ ok: false, error: 'invalid_model' });
      }
    }
  });

  it('accepts a top-level number of any length, on both paths, and gives the rewrite its offsets (was: 500 / 400)', () => {
    const long = '1.' + '0'.repeat(70) + '1';
    for (const n of sizes) {
      const body = `{"model":"ocr","pad":"${pad(n)}","temperature":${long},"n":-12345678901234567890123456789012345678901234567890123456789012345678901e-5}`;
      expect(JSON.parse(body).model).toBe('ocr');
      expect(findModel(Buffer.from(body))).toMatchObject({ ok: true, model: 'ocr' });
      const s = scanModel(Buffer.from(body));
      expect(s).toMatchObject({ ok: true, model: 'ocr' });
      if (s.ok) expect(body.slice(s.start, s.end)).toBe('"ocr"');
    }
  });

  it('refuses invalid UTF-8 in the model on both paths, and leaves it elsewhere to the backend', () => {
    const small = Buffer.concat([Buffer.from('{"model":"m","x":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
    expect(findModel(small)).toMatchObject({ ok: true, model: 'm' });
    const smallModel = Buffer.concat([Buffer.from('{"model":"m'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
    expect(findModel(smallModel)).toMatchObject({ ok: false, error: 'invalid_json' });
    const bigModel = Buffer.concat([Buffer.from(`{"x":"${pad(PARSE_WHOLE_MAX)}","model":"m`), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')]);
    expect(findModel(bigModel)).toMatchObject({ ok: false, error: 'invalid_json' });
    // A real U+FFFD is valid text.
    expect(findModel(Buffer.from('{"model":"m\ufffd"}'))).toMatchObject({ ok: true, model: 'm\ufffd' });
  });

  it('validUtf8 agrees with a strict decoder', () => {
    const dec = new TextDecoder('utf-8', { fatal: true });
    const cases = [[0x41], [0xc3, 0xa9], [0xc0, 0x80], [0xe0, 0x80, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xf0, 0x9f, 0x98, 0x80], [0xe2, 0x82], [0xff], [0xe2, 0x28, 0xa1]];
    for (const c of cases) {
      const b = Buffer.from(c);
      let ok = true;
      try { dec.decode(b); } catch { ok = false; }
      expect(validUtf8(b, 0, b.length), JSON.stringify(c)).toBe(ok);
    }
  });
});

describe('findModel on bodies that are not objects', () => {
  it('answers invalid_json "must be a JSON object" for arrays and scalars, "model" inside or not, bytes or text', () => {
    for (const t of ['[]', '[1]', '["model"]', '[{"model":"a"}]', '["\\"model\\"","\\"model\\""]', ' [ ] ', '"x"', '1', 'null', 'true']) {
      const b = Buffer.from(t);
      for (const r of [findModel(b), findModel(b, t)]) {
        expect(r, t).toMatchObject({ ok: false, error: 'invalid_json', detail: 'The request body must be a JSON object.' });
      }
    }
  });
});

describe('a model no UTF-8 text can hold', () => {
  const pad = 'x'.repeat(PARSE_WHOLE_MAX);
  it('an unpaired surrogate escape is refused on both size paths; a pair is read', () => {
    for (const pre of ['{"model":"m', `{"messages":["${pad}"],"model":"m`]) {
      for (const esc of ['\\ud800', '\\udc00', '\\ud800x', '\\udc00\\ud800']) {
        const r = findModel(Buffer.from(pre + esc + '"}'));
        expect(r.ok).toBe(false);
        expect(['invalid_model', 'invalid_json']).toContain(!r.ok && r.error);
      }
      expect(findModel(Buffer.from(pre + '\\ud83d\\ude00"}'))).toMatchObject({ ok: true, model: 'm\u{1f600}' });
    }
  });
  it("QuickJS's reading of an encoded surrogate (a lone surrogate instead of U+FFFD) sends the body to the byte scanner", () => {
    const b = Buffer.concat([Buffer.from('{"model":"m'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')]);
    // What QuickJS's r.requestText holds for these bytes.
    const text = '{"model":"m\ud800"}';
    expect(findModel(b, text)).toMatchObject({ ok: false, error: 'invalid_json' });
    // A CESU-8 pair, which QuickJS reads as a valid pair.
    const cesu = Buffer.concat([Buffer.from('{"model":"m'), Buffer.from([0xed, 0xa0, 0x80, 0xed, 0xb0, 0x80]), Buffer.from('"}')]);
    expect(findModel(cesu, '{"model":"m\u{10000}"}')).toMatchObject({ ok: false, error: 'invalid_json' });
    // Valid multi-byte text in the model still reads the same from text or bytes.
    const ok = Buffer.from('{"model":"caf\u00e9-\u{1f600}","messages":["\u4e2d"]}');
    expect(findModel(ok, ok.toString('utf8'))).toMatchObject({ ok: true, model: 'caf\u00e9-\u{1f600}' });
  });
});

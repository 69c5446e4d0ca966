/**
 * Issue 13: the model the gateway authorizes is the model the backend reads. A key may use only
 * model-a (and whisper-a); model-b and whisper-b live on the same backend (as LoRA adapters or the
 * shipped whisper + chat pair do), so any body a parser could read as model-b must be refused
 * before it reaches the backend. The mock reports the model it parsed (x-mock-model): JSON.parse
 * (last duplicate wins) for JSON, the first name="model" found in any part header for multipart
 * (a sloppy reader on purpose: the gateway must not be fooled by what such readers take either).
 */
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { post } from '../../tools/clients';
import { useGateway } from '../support/useGateway';

const KEY = 'sk-gw-model-trust-key-0123456789abcdef';
const keysDir = mkdtempSync(join(tmpdir(), 'gw-keys-'));
chmodSync(keysDir, 0o755);
const keysFile = join(keysDir, 'keys.json');
writeFileSync(keysFile, JSON.stringify({ keys: [
  { id: 'only-a', hash: `sha256:${createHash('sha256').update(KEY).digest('hex')}`, models: ['model-a', 'whisper-a'] },
] }));

const gw = useGateway({
  auth: true,
  env: { GW_KEYS_FILE: keysFile },
  backends: { be_shared: {} },
  models: {
    'model-a': { upstream: 'be_shared', aliases: ['a-alias'] },
    'model-b': { upstream: 'be_shared' },
    'whisper-a': { upstream: 'be_shared', capabilities: ['audio'] },
    'whisper-b': { upstream: 'be_shared', capabilities: ['audio'] },
  },
});
const auth = { authorization: `Bearer ${KEY}` };
const pad = 'QUJD'.repeat(75_000); // 300 KB: the size where the tail scan used to answer

beforeEach(() => gw.mocks.be_shared.resetStats());

/** 400 with an OpenAI error and nothing forwarded, or 200 with the backend reading an allowed model. */
async function expectRefusedOrA(res: Response, allowed = 'model-a'): Promise<number | string> {
  if (res.status === 200) {
    expect(res.headers.get('x-mock-model')).toBe(allowed);
  } else {
    expect(res.status).toBe(400);
    const e = (await res.json()).error;
    expect(['invalid_model', 'invalid_json', 'invalid_multipart']).toContain(e.code);
    // Nothing forwarded (health probes and /v1/models polls do reach the mock meanwhile).
    const by = gw.mocks.be_shared.stats.byPath;
    expect((by['/v1/chat/completions'] ?? 0) + (by['/v1/audio/transcriptions'] ?? 0)).toBe(0);
    return e.code;
  }
  return res.status;
}

function chunked(path: string, body: string, headers: Record<string, string>): Promise<Response> {
  return new Promise((resolve, reject) => {
    const u = new URL(gw.url + path);
    const req = request({ host: u.hostname, port: u.port, path, method: 'POST', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked', ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => resolve(new Response(Buffer.concat(chunks), { status: res.statusCode, headers: res.headers as Record<string, string> })));
    });
    req.on('error', reject);
    for (let i = 0; i < body.length; i += 65536) req.write(body.slice(i, i + 65536));
    req.end();
  });
}

describe('one rule for model, through nginx (issue 13)', () => {
  const dupBodies: [string, string][] = [
    ['escaped duplicate after the real model, 300 KB', `{"messages":[{"role":"user","content":"${pad}"}],"model":"model-a","mod\\u0065l":"model-b"}`],
    ['escaped duplicate before it, 300 KB', `{"\\u006dodel":"model-b","messages":[{"role":"user","content":"${pad}"}],"model":"model-a"}`],
    ['"model": null after the real one, 300 KB', `{"messages":[{"role":"user","content":"${pad}"}],"model":"model-a","model":null}`],
    ['plain duplicate, small', '{"model":"model-a","messages":[{"role":"user","content":"hi"}],"model":"model-b"}'],
    ['escaped duplicate, small', '{"model":"model-a","messages":[],"m\\u006f\\u0064el":"model-b"}'],
    ['alias then the other model, small', '{"model":"a-alias","messages":[],"model":"model-b"}'],
    ['alias then the other model, 300 KB', `{"messages":["${pad}"],"model":"a-alias","mod\\u0065l":"model-b"}`],
  ];
  for (const [name, body] of dupBodies) {
    it(`refuses a duplicate "model" with 400 (Content-Length): ${name}`, async () => {
      expect(await expectRefusedOrA(await post(`${gw.url}/v1/chat/completions`, body, auth))).toBe('invalid_model');
    });
  }

  it('refuses the 300 KB escaped duplicate sent chunked too', async () => {
    const res = await chunked('/v1/chat/completions', dupBodies[0][1], auth);
    expect(await expectRefusedOrA(res)).toBe('invalid_model');
  });

  it('still serves the one allowed model from a 300 KB body, Content-Length and chunked', async () => {
    const body = `{"messages":[{"role":"user","content":"${pad}"}],"max_tokens":5,"model":"model-a"}`;
    expect(await expectRefusedOrA(await post(`${gw.url}/v1/chat/completions`, body, auth))).toBe(200);
    expect(await expectRefusedOrA(await chunked('/v1/chat/completions', body, auth))).toBe(200);
  });

  it('rewrites an alias in a small body with a 70-digit number (was: 500 internal_error) and a large one', async () => {
    const long = '1.' + '0'.repeat(70) + '1';
    for (const body of [`{"model":"a-alias","temperature":${long},"messages":[]}`, `{"messages":["${pad}"],"temperature":${long},"model":"a-alias"}`]) {
      const res = await post(`${gw.url}/v1/chat/completions`, body, auth);
      expect(res.status).toBe(200);
      expect(res.headers.get('x-mock-model')).toBe('model-a');
    }
  });

  it('refuses invalid UTF-8 in the model of a small and a large body (njs decodes it as Node does)', async () => {
    const small = Buffer.concat([Buffer.from('{"messages":[],"model":"model-a'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
    const large = Buffer.concat([Buffer.from(`{"messages":["${pad}"],"model":"model-a`), Buffer.from([0xff]), Buffer.from('"}')]);
    for (const body of [small, large]) {
      const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...auth } });
      expect(await expectRefusedOrA(res)).toBe('invalid_json');
    }
  });

  it('refuses a model no UTF-8 text can hold on every engine: an encoded surrogate (QuickJS decodes it as one), a CESU-8 pair, an unpaired \\ud800 escape', async () => {
    const send = (body: Buffer) => fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', body: body as BodyInit, headers: { 'content-type': 'application/json', ...auth } });
    const bodies = [
      Buffer.concat([Buffer.from('{"messages":[],"model":"model-a'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')]),
      Buffer.concat([Buffer.from('{"messages":[],"model":"model-a'), Buffer.from([0xed, 0xa0, 0x80, 0xed, 0xb0, 0x80]), Buffer.from('"}')]),
      Buffer.concat([Buffer.from(`{"messages":["${pad}"],"model":"model-a`), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')]),
      Buffer.from('{"messages":[],"model":"model-a\\ud800"}'),
      Buffer.from(`{"messages":["${pad}"],"model":"model-a\\udc00"}`),
    ];
    for (const body of bodies) {
      const res = await send(body);
      expect(res.status).toBe(400);
      expect(['invalid_model', 'invalid_json']).toContain((await res.json()).error.code);
    }
    expect(gw.mocks.be_shared.stats.byPath['/v1/chat/completions'] ?? 0).toBe(0);
    // A paired escape is a real character: read, and (not being a model) not found.
    const pair = await send(Buffer.from('{"messages":[],"model":"model-a\\ud83d\\ude00"}'));
    expect(pair.status).toBe(404);
  });

  it('reads a small body the same from its text (r.requestText) as from its bytes: a BOM, invalid UTF-8 elsewhere, a non-ASCII alias', async () => {
    const send = (body: Buffer) => fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', body: body as BodyInit, headers: { 'content-type': 'application/json', ...auth } });
    // Invalid UTF-8 outside the model is the backend's to refuse: forwarded (the mock answers 400 itself).
    const elsewhere = await send(Buffer.concat([Buffer.from('\ufeff{"model":"model-a","messages":[{"role":"user","content":"'), Buffer.from([0xff, 0xc3, 0x28]), Buffer.from('"}]}')]));
    expect(gw.mocks.be_shared.stats.byPath['/v1/chat/completions']).toBe(1);
    expect((await elsewhere.json()).error.code).not.toBe('invalid_json');
    gw.mocks.be_shared.resetStats();
    const alias = await send(Buffer.from('{"messages":[{"role":"user","content":"caf\u00e9 \u4e2d"}],"model":"a-alias"}'));
    expect(alias.status).toBe(200);
    expect(alias.headers.get('x-mock-model')).toBe('model-a');
    gw.mocks.be_shared.resetStats();
    const inModel = await send(Buffer.concat([Buffer.from('\ufeff{"model":"model-'), Buffer.from([0xff]), Buffer.from('a"}')]));
    expect(await expectRefusedOrA(inModel)).toBe('invalid_json');
  });

  const form = (boundary: string, parts: [string, string][]) =>
    parts.map(([headers, value]) => `--${boundary}\r\n${headers}\r\n\r\n${value}\r\n`).join('') + `--${boundary}--\r\n`;
  const file: [string, string] = ['Content-Disposition: form-data; name="file"; filename="a.wav"\r\nContent-Type: audio/wav', 'RIFF....WAVE'];
  const multipartCases: [string, string, string][] = [
    ['two model parts, the allowed one last', 'multipart/form-data; boundary=XyZ', form('XyZ', [['Content-Disposition: form-data; name="model"', 'whisper-b'], file, ['Content-Disposition: form-data; name="model"', 'whisper-a']])],
    ['two model parts, the allowed one first', 'multipart/form-data; boundary=XyZ', form('XyZ', [['Content-Disposition: form-data; name="model"', 'whisper-a'], file, ['Content-Disposition: form-data; name=model', 'whisper-b']])],
    ['a token name=model beside a quoted one', 'multipart/form-data; boundary=XyZ', form('XyZ', [['Content-Disposition: form-data; name = model', 'whisper-b'], file, ['Content-Disposition: form-data; name="model"', 'whisper-a']])],
    ['name="model" in a header that is not Content-Disposition', 'multipart/form-data; boundary=XyZ', form('XyZ', [['X-Foo: a; name="model"\r\nContent-Disposition: form-data; name="language"', 'whisper-b'], file, ['Content-Disposition: form-data; name="model"', 'whisper-a']])],
    ['xboundary= instead of boundary=', 'multipart/form-data; xboundary=XyZ', form('XyZ', [file, ['Content-Disposition: form-data; name="model"', 'whisper-a']])],
    ['a comma instead of a semicolon', 'multipart/form-data, boundary=XyZ', form('XyZ', [file, ['Content-Disposition: form-data; name="model"', 'whisper-a']])],
  ];
  for (const [name, ctype, body] of multipartCases) {
    it(`multipart: ${name} → 400 or whisper-a, never whisper-b`, async () => {
      const res = await fetch(`${gw.url}/v1/audio/transcriptions`, { method: 'POST', body, headers: { 'content-type': ctype, ...auth } });
      // Content-Types: a multipart error, not a JSON parse of the form (was: invalid_json).
      expect(await expectRefusedOrA(res, 'whisper-a')).toBe(/two model|token/.test(name) ? 'invalid_model' : 'invalid_multipart');
    });
  }
});

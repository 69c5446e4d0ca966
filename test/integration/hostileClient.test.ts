/**
 * A hostile client against a real nginx, on what the other suites do not send: a key allowed only
 * model-a must never reach model-b through HTTP framing tricks (pipelining, a second request on a
 * keep-alive connection, Expect: 100-continue, HTTP/1.0, chunk extensions and trailers, a gzip or
 * UTF-16 body), and nginx's own refusal of TRACE must be OpenAI JSON like every other error.
 */
import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { beforeEach, describe, expect, it } from 'vitest';
import { parseRawResponse, rawRequest } from '../support/rawHttp';
import { useGateway } from '../support/useGateway';

const KEY = 'sk-gw-hostile-only-a-0123456789abcdef';
const dir = mkdtempSync(join(tmpdir(), 'gw-hostile-'));
chmodSync(dir, 0o755);
const keysFile = join(dir, 'keys.json');
writeFileSync(keysFile, JSON.stringify({ keys: [
  { id: 'only-a', hash: `sha256:${createHash('sha256').update(KEY).digest('hex')}`, models: ['model-a'] },
] }));

const gw = useGateway({
  auth: true,
  env: { GW_KEYS_FILE: keysFile },
  backends: { be_shared: {} },
  models: { 'model-a': { upstream: 'be_shared' }, 'model-b': { upstream: 'be_shared' } },
});
beforeEach(() => gw.mocks.be_shared.resetStats());

const A = '{"model":"model-a","messages":[]}';
const B = '{"model":"model-b","messages":[]}';

function post(body: string | Buffer, o: { version?: string; extra?: string; close?: boolean } = {}): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  const head = `POST /v1/chat/completions HTTP/${o.version ?? '1.1'}\r\nHost: gw\r\nAuthorization: Bearer ${KEY}\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${b.length}\r\n${o.extra ?? ''}${o.close ? 'Connection: close\r\n' : ''}\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), b]);
}

/** Writes `data` at once and reads until nginx closes (the last request says Connection: close). */
function exchange(data: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(gw.port, '127.0.0.1');
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', reject);
    s.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    s.write(data);
  });
}

/** Status lines and x-mock-model values of every response on the connection, in order. */
function responses(text: string): { status: number; model: string | null }[] {
  return text.split(/(?=HTTP\/1\.[01] \d{3} )/).filter((p) => p.startsWith('HTTP/')).map((p) => {
    const m = /\r\nx-mock-model: ([^\r\n]*)/i.exec(p.slice(0, p.indexOf('\r\n\r\n')));
    return { status: Number(p.slice(9, 12)), model: m ? m[1] : null };
  });
}

/** The backend got the one model-a request and nothing else on the chat path. */
function modelBNeverForwarded(): void {
  expect(gw.mocks.be_shared.stats.byPath['/v1/chat/completions'] ?? 0).toBe(1);
}

describe('a key for model-a gets model-b through no framing trick', () => {
  it('pipelined: model-a then model-b in one write', async () => {
    const r = responses(await exchange(Buffer.concat([post(A), post(B, { close: true })])));
    expect(r).toEqual([{ status: 200, model: 'model-a' }, { status: 404, model: null }]);
    modelBNeverForwarded();
  });

  it('the second request on a keep-alive connection, after the first was answered', async () => {
    const s = connect(gw.port, '127.0.0.1');
    let text = '';
    s.on('data', (d: Buffer) => { text += d.toString('latin1'); });
    const closed = new Promise<void>((ok) => s.on('close', () => ok()));
    s.write(post(A));
    while (!/x-mock-model/i.test(text) || !/\r\n\r\n[\s\S]*\}$/.test(text)) await new Promise((ok) => setTimeout(ok, 20));
    s.write(post(B, { close: true }));
    await closed;
    expect(responses(text)).toEqual([{ status: 200, model: 'model-a' }, { status: 404, model: null }]);
    modelBNeverForwarded();
  });

  it('Expect: 100-continue, HTTP/1.0, chunk extensions and trailers', async () => {
    const e = responses(await exchange(post(B, { extra: 'Expect: 100-continue\r\n', close: true })));
    expect(e[e.length - 1]).toEqual({ status: 404, model: null });
    const h10 = parseRawResponse(Buffer.from(await exchange(post(B, { version: '1.0' })), 'latin1'));
    expect(h10.status).toBe(404);
    const chunked = `POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${KEY}\r\nContent-Type: application/json\r\n` +
      `Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n${B.length.toString(16)};ext="model-a"\r\n${B}\r\n0\r\nX-Model: model-a\r\n\r\n`;
    expect(parseRawResponse(Buffer.from(await exchange(Buffer.from(chunked, 'latin1')), 'latin1')).status).toBe(404);
    expect(gw.mocks.be_shared.stats.byPath['/v1/chat/completions'] ?? 0).toBe(0);
  });

  it('a gzip (Content-Encoding) or UTF-16 body is not JSON to the gateway: 400, nothing forwarded', async () => {
    for (const [body, extra] of [
      [gzipSync(B), 'Content-Encoding: gzip\r\n'],
      [Buffer.from('\ufeff' + B, 'utf16le'), ''],
      [Buffer.from(B, 'utf16le'), ''],
    ] as [Buffer, string][]) {
      const res = parseRawResponse(Buffer.from(await exchange(post(body, { extra, close: true })), 'latin1'));
      expect(res.status).toBe(400);
      expect(JSON.parse(res.body).error.code).toBe('invalid_json');
    }
    expect(gw.mocks.be_shared.stats.byPath['/v1/chat/completions'] ?? 0).toBe(0);
  });
});

describe('nesting deeper than njs\'s JSON.parse allows (32 levels)', () => {
  const deep = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);
  it('a small body is read like a large one: 200 for an allowed model, duplicates still refused', async () => {
    const ok = parseRawResponse(Buffer.from(await exchange(post(`{"model":"model-a","tools":${deep(40)},"messages":[]}`, { close: true })), 'latin1'));
    expect(ok.status).toBe(200);
    expect(ok.headers['x-mock-model']).toBe('model-a');
    const dup = parseRawResponse(Buffer.from(await exchange(post(`{"model":"model-a","tools":${deep(40)},"mod\\u0065l":"model-b"}`, { close: true })), 'latin1'));
    expect(dup.status).toBe(400);
    expect(JSON.parse(dup.body).error.code).toBe('invalid_model');
    expect(gw.mocks.be_shared.stats.byPath['/v1/chat/completions'] ?? 0).toBe(1);
  });
});

describe('credentials: which one the gateway uses, and what the backend gets', () => {
  it('Authorization wins over api-key / x-api-key; none of the three reaches the backend', async () => {
    const other = 'sk-gw-not-a-key-but-looks-like-one-0123';
    const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', body: A, headers: {
      'content-type': 'application/json', authorization: `Bearer ${KEY}`, 'api-key': other, 'X-API-KEY': other } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-mock-model')).toBe('model-a');
    const seen = gw.mocks.be_shared.stats.recentHeaders.filter((h) => h['x-request-id'] !== undefined && h['content-type'] === 'application/json');
    expect(seen.length).toBeGreaterThan(0);
    const h = seen[seen.length - 1];
    expect([h.authorization, h['api-key'], h['x-api-key']]).toEqual([undefined, undefined, undefined]);
    expect(JSON.stringify(h)).not.toContain(KEY);
    // A wrong Authorization is not rescued by a good api-key: the one credential the gateway reads is refused.
    const bad = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', body: A, headers: {
      'content-type': 'application/json', authorization: `Bearer ${other}`, 'api-key': KEY } });
    expect(bad.status).toBe(401);
  });
});

describe('a key reaches only the inference endpoints of its models\' backend', () => {
  it('vLLM\'s adapter API under /v1/ is not proxied, whatever model the body names', async () => {
    for (const path of ['/v1/unload_lora_adapter', '/v1/load_lora_adapter', '/v1/responses/x/cancel', '/v1/chat']) {
      const res = await fetch(`${gw.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'model-a', lora_name: 'model-b', lora_path: '/tmp/evil' }) });
      expect(res.status, path).toBe(404);
      expect((await res.json()).error.code).toBe('not_found');
    }
    // Health probes and /v1/models polls may reach the mock meanwhile; none of these paths may.
    const by = gw.mocks.be_shared.stats.byPath;
    expect(Object.keys(by).filter((p) => p !== '/health' && p !== '/v1/models')).toEqual([]);
    // Still a key check first: without one the answer is 401, not a hint about which paths exist.
    expect((await fetch(`${gw.url}/v1/unload_lora_adapter`, { method: 'POST', body: '{}' })).status).toBe(401);
  });
});

describe('nginx-made refusals stay JSON', () => {
  it('TRACE is a 405 OpenAI error on both ports, not nginx HTML', async () => {
    const admin = Number(new URL(gw.adminUrl).port);
    for (const port of [gw.port, admin]) {
      const res = await rawRequest(port, 'TRACE /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n\r\n');
      expect(res.status).toBe(405);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(JSON.parse(res.body).error.code).toBe('method_not_allowed');
    }
  });

  it('no answer names the nginx version (server_tokens off), on either port', async () => {
    for (const url of [`${gw.url}/health`, `${gw.url}/nope`, `${gw.adminUrl}/nope`]) {
      const res = await fetch(url);
      await res.arrayBuffer();
      expect(res.headers.get('server'), url).toBe('nginx');
    }
  });

  it('the gateway\'s own 405 keeps its message (GET on a POST endpoint)', async () => {
    const res = await fetch(`${gw.url}/v1/chat/completions`, { headers: { authorization: `Bearer ${KEY}` } });
    expect(res.status).toBe(405);
    expect((await res.json()).error.message).toMatch(/Use POST/);
  });
});

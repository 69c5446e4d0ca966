/**
 * Structured access log (log_format gw_json, nginx/logging-http.conf), request ids, token usage from
 * JSON and SSE responses, and the usage ledger at /admin/usage, on a real nginx. Every line is
 * also checked against nginx/log-schema.json (here explicitly, and by useGateway after each test).
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createSocket, Socket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHAT, chatBody, EMBED, post } from '../../tools/clients';
import { invalidLogBytes, invalidLogLines, LogLine, logLineProblems, parseLogLines, waitForLogLine } from '../support/logSchema';
import { rawRequest } from '../support/rawHttp';
import { eventually } from '../support/eventually';
import { useGateway } from '../support/useGateway';

const KEY = 'sk-gw-logging-test-key-0123456789abcdef';
const keysDir = mkdtempSync(join(tmpdir(), 'gw-logkeys-'));
chmodSync(keysDir, 0o755);
const keysFile = join(keysDir, 'keys.json');
writeFileSync(keysFile, JSON.stringify({ keys: [
  { id: 'team-logs', hash: `sha256:${createHash('sha256').update(KEY).digest('hex')}`, models: '*' },
] }));
chmodSync(keysFile, 0o644);

const gw = useGateway({
  auth: true,
  env: { GW_KEYS_FILE: keysFile },
  backends: { be_chat: {}, be_embed: {} },
  models: {
    [CHAT]: { upstream: 'be_chat', aliases: ['chat-default'] },
    [EMBED]: { upstream: 'be_embed', capabilities: ['embeddings'] },
  },
  // A short read timeout makes nginx answer 504 itself (error_page → @gw_e504) for a slow backend.
  includePatches: { 'gateway-server.conf': (t) => t.replace('proxy_read_timeout 900s;', 'proxy_read_timeout 1s;') },
});

const AUTH = { authorization: `Bearer ${KEY}` };
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}([+-]\d{2}:\d{2}|Z)$/;
const TIMES = /^\d+\.\d{3}$/;

function rid(tag: string): string {
  return `test-${tag}-${randomBytes(6).toString('hex')}`;
}

function line(id: string): Promise<LogLine> {
  return waitForLogLine(() => gw.nginx.accessLog(), id);
}

/** The usage object of the last SSE event that has one. */
function sseUsage(text: string): { prompt_tokens: number; completion_tokens: number; total_tokens: number } | undefined {
  let found: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | undefined;
  for (const ev of text.split('\n\n')) {
    const m = /^data: (\{.*\})$/m.exec(ev);
    if (!m) continue;
    const o = JSON.parse(m[1]);
    if (o.usage) found = o.usage;
  }
  return found;
}

function expectCommon(l: LogLine, id: string): void {
  expect(logLineProblems(JSON.stringify(l))).toEqual([]);
  expect(l.request_id).toBe(id);
  expect(l.time).toMatch(ISO);
  expect(Math.abs((l.ts as number) * 1000 - Date.now())).toBeLessThan(60_000);
  expect(l.remote_addr).toBe('127.0.0.1');
  expect(l.request_time).toBeGreaterThanOrEqual(0);
  expect(l.tier).toBe('normal');
  expect(JSON.stringify(l)).not.toContain(KEY);
}

function expectProxied(l: LogLine, upstream: string, backendPort: number): void {
  expect(l.upstream).toBe(upstream);
  expect(l.upstream_addr).toBe(`127.0.0.1:${backendPort}`);
  expect(l.upstream_connect_time).toMatch(TIMES);
  expect(l.upstream_header_time).toMatch(TIMES);
  expect(l.upstream_response_time).toMatch(TIMES);
  // Both are whole milliseconds printed as seconds; compared in ms, one ms of clock skew allowed.
  expect(Math.round(Number(l.upstream_response_time) * 1000)).toBeLessThanOrEqual(Math.round((l.request_time as number) * 1000) + 1);
}

describe('access log: one schema-valid JSON line per request', () => {
  it('a chat completion: ids, model, upstream, timings, bytes and the tokens the backend returned', async () => {
    const id = rid('chat');
    const body = chatBody(CHAT);
    const res = await post(`${gw.url}/v1/chat/completions`, body, { ...AUTH, 'x-request-id': id });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe(id);
    const out = await res.json();
    const l = await line(id);
    expectCommon(l, id);
    expectProxied(l, 'be_chat', gw.mocks.be_chat.port);
    expect(l).toMatchObject({
      method: 'POST', uri: '/v1/chat/completions', endpoint: 'chat', status: 200, key_id: 'team-logs',
      model: CHAT, model_requested: CHAT, stream: false, upstream_status: '200', error_code: '', client_abort: false,
      ttft_ms: null, queue_ms: 0,
      prompt_tokens: out.usage.prompt_tokens, completion_tokens: out.usage.completion_tokens, total_tokens: out.usage.total_tokens,
    });
    expect(out.usage.prompt_tokens).toBeGreaterThan(0);
    expect(l.request_length).toBeGreaterThan(body.length);
    expect(l.body_bytes_sent).toBe(JSON.stringify(out).length);
    expect(l.bytes_sent).toBeGreaterThan(l.body_bytes_sent as number);
    // The backend got the same id, once.
    const seen = gw.mocks.be_chat.stats.recentHeaders.filter((h) => h['x-request-id'] === id);
    expect(seen).toHaveLength(1);
  });

  it('generates a request id when the client sends none or an unsafe one, and sends it upstream', async () => {
    for (const sent of [undefined, 'bad id with spaces', 'x'.repeat(129), 'a"b']) {
      const headers: Record<string, string> = { ...AUTH };
      if (sent !== undefined) headers['x-request-id'] = sent;
      const res = await post(`${gw.url}/v1/chat/completions`, chatBody(CHAT), headers);
      expect(res.status).toBe(200);
      const id = res.headers.get('x-request-id')!;
      expect(id).toMatch(/^[0-9a-f]{32}$/);
      await res.arrayBuffer();
      const l = await line(id);
      expect(l.request_id).toBe(id);
      expect(gw.mocks.be_chat.stats.recentHeaders.filter((h) => h['x-request-id'] === id)).toHaveLength(1);
    }
  });

  it('an alias through the body-rewrite path still counts tokens', async () => {
    const id = rid('alias');
    const res = await post(`${gw.url}/v1/chat/completions`, chatBody('chat-default'), { ...AUTH, 'x-request-id': id });
    const out = await res.json();
    const l = await line(id);
    expect(l).toMatchObject({ model: CHAT, model_requested: 'chat-default', status: 200, prompt_tokens: out.usage.prompt_tokens, total_tokens: out.usage.total_tokens });
  });

  it('a stream with stream_options.include_usage: tokens from the final SSE chunk, time to first token', async () => {
    const id = rid('sse');
    const res = await post(`${gw.url}/v1/chat/completions`, chatBody(CHAT, { stream: true, stream_options: { include_usage: true } }),
      { ...AUTH, 'x-request-id': id, 'x-mock-chunks': '5', 'x-mock-chunk-delay-ms': '30' });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe(id);
    const text = await res.text();
    const usage = sseUsage(text)!;
    expect(usage.completion_tokens).toBe(5);
    const l = await line(id);
    expectCommon(l, id);
    expectProxied(l, 'be_chat', gw.mocks.be_chat.port);
    expect(l).toMatchObject({
      endpoint: 'chat', status: 200, stream: true, client_abort: false, error_code: '',
      prompt_tokens: usage.prompt_tokens, completion_tokens: usage.completion_tokens, total_tokens: usage.total_tokens,
    });
    // Chunked transfer encoding: the framing counts too.
    expect(l.body_bytes_sent as number).toBeGreaterThanOrEqual(Buffer.byteLength(text));
    // First bytes come before the last of five chunks 30 ms apart.
    expect(l.ttft_ms).toEqual(expect.any(Number));
    expect(l.ttft_ms as number).toBeLessThanOrEqual((l.request_time as number) * 1000);
  });

  it('a stream without include_usage has no token counts', async () => {
    const id = rid('sse-nousage');
    const res = await post(`${gw.url}/v1/chat/completions`, chatBody(CHAT, { stream: true }), { ...AUTH, 'x-request-id': id });
    const text = await res.text();
    expect(sseUsage(text)).toBeUndefined();
    const l = await line(id);
    expect(l).toMatchObject({ stream: true, status: 200, prompt_tokens: null, completion_tokens: null, total_tokens: null });
    expect(l.ttft_ms).toEqual(expect.any(Number));
  });

  it('a large body with "stream" before its model is logged as a stream (the tail scan reads after the model only)', async () => {
    const id = rid('sse-big');
    const body = JSON.stringify({ stream: true, messages: [{ role: 'user', content: 'x'.repeat(300_000) }], model: CHAT });
    const res = await post(`${gw.url}/v1/chat/completions`, body, { ...AUTH, 'x-request-id': id });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    await res.text();
    const l = await line(id);
    expect(l).toMatchObject({ model: CHAT, stream: true, status: 200 });
    expect(l.ttft_ms).toEqual(expect.any(Number));
  });

  it('an embeddings call', async () => {
    const id = rid('embd');
    const res = await post(`${gw.url}/v1/embeddings`, JSON.stringify({ model: EMBED, input: ['a', 'b', 'c'] }), { ...AUTH, 'x-request-id': id });
    expect(res.status).toBe(200);
    const out = await res.json();
    const l = await line(id);
    expectCommon(l, id);
    expectProxied(l, 'be_embed', gw.mocks.be_embed.port);
    expect(l).toMatchObject({
      uri: '/v1/embeddings', endpoint: 'embeddings', model: EMBED, stream: false, status: 200, ttft_ms: null,
      prompt_tokens: out.usage.prompt_tokens, completion_tokens: 0, total_tokens: out.usage.total_tokens,
    });
  });

  it('a 4xx made by the gateway: error code, no upstream, no tokens, id still echoed', async () => {
    const id = rid('404');
    const res = await post(`${gw.url}/v1/chat/completions`, chatBody('no-such-model'), { ...AUTH, 'x-request-id': id });
    expect(res.status).toBe(404);
    expect(res.headers.get('x-request-id')).toBe(id);
    expect((await res.json()).error.code).toBe('model_not_found');
    const l = await line(id);
    expectCommon(l, id);
    expect(l).toMatchObject({
      status: 404, error_code: 'model_not_found', model: '', model_requested: 'no-such-model', upstream: '',
      upstream_addr: '', upstream_status: '', upstream_connect_time: '', client_abort: false,
      prompt_tokens: null, completion_tokens: null, total_tokens: null, ttft_ms: null, key_id: 'team-logs',
    });

    const id2 = rid('nokey');
    const res2 = await post(`${gw.url}/v1/chat/completions`, chatBody(CHAT), { 'x-request-id': id2 });
    expect(res2.status).toBe(401);
    const l2 = await line(id2);
    expect(l2).toMatchObject({ status: 401, key_id: '', upstream: '', prompt_tokens: null });

    const id3 = rid('path');
    const res3 = await fetch(`${gw.url}/nope?token=secret`, { headers: { 'x-request-id': id3 } });
    expect(res3.status).toBe(404);
    expect(res3.headers.get('x-request-id')).toBe(id3);
    const l3 = await line(id3);
    expect(l3).toMatchObject({ status: 404, uri: '/nope', endpoint: 'other', method: 'GET' });
    expect(JSON.stringify(l3)).not.toContain('secret');
  });

  it('a 5xx from the backend passes through: upstream status, no gateway error code', async () => {
    const id = rid('500');
    const res = await post(`${gw.url}/v1/chat/completions`, chatBody(CHAT), { ...AUTH, 'x-request-id': id, 'x-mock-status': '500' });
    expect(res.status).toBe(500);
    expect(res.headers.get('x-request-id')).toBe(id);
    await res.arrayBuffer();
    const l = await line(id);
    expectCommon(l, id);
    expectProxied(l, 'be_chat', gw.mocks.be_chat.port);
    expect(l).toMatchObject({ status: 500, upstream_status: '500', error_code: '', client_abort: false, prompt_tokens: null, total_tokens: null });
  });

  it('an error nginx makes itself (504 from error_page) carries the gateway error code', async () => {
    const id = rid('504');
    const res = await post(`${gw.url}/v1/chat/completions`, chatBody(CHAT), { ...AUTH, 'x-request-id': id, 'x-mock-latency-ms': '3000' });
    expect(res.status).toBe(504);
    expect(res.headers.get('x-request-id')).toBe(id);
    expect((await res.json()).error.code).toBe('upstream_timeout');
    gw.allowErrorLog(/upstream timed out/);
    const l = await line(id);
    expectCommon(l, id);
    expect(l).toMatchObject({ status: 504, error_code: 'upstream_timeout', upstream: 'be_chat', upstream_status: '504', client_abort: false, prompt_tokens: null });
    expect(l.upstream_header_time).toBe('-');
  });

  it('a client that leaves before the response begins is logged as 499 with client_abort true', async () => {
    const id = rid('gone');
    const ac = new AbortController();
    const sent = fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST', signal: ac.signal, body: chatBody(CHAT),
      headers: { ...AUTH, 'content-type': 'application/json', 'x-request-id': id, 'x-mock-latency-ms': '1500' },
    }).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 300));
    ac.abort();
    await sent;
    const l = await line(id);
    expectCommon(l, id);
    expect(l).toMatchObject({ status: 499, client_abort: true, prompt_tokens: null });
  });

  it('a client that aborts mid-stream is flagged, and the log line is still written', async () => {
    const id = rid('abort');
    const ac = new AbortController();
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST', signal: ac.signal, body: chatBody(CHAT, { stream: true, stream_options: { include_usage: true } }),
      headers: { ...AUTH, 'content-type': 'application/json', 'x-request-id': id, 'x-mock-chunks': '20', 'x-mock-chunk-delay-ms': '100' },
    });
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(first.done).toBe(false);
    ac.abort();
    await reader.read().catch(() => undefined);
    const l = await line(id);
    expectCommon(l, id);
    expect(l).toMatchObject({ status: 200, stream: true, client_abort: true, prompt_tokens: null, completion_tokens: null, total_tokens: null });
    expect(l.ttft_ms).toEqual(expect.any(Number));
    expect(l.body_bytes_sent as number).toBeGreaterThan(0);
    // The stream was cut: far fewer bytes than 20 chunks plus the usage chunk.
    expect(l.request_time as number).toBeLessThan(1.9);
  });

  it('hostile request targets and bodies: every line is still strict UTF-8 JSON; non-UTF-8 paths are refused', async () => {
    const accessPath = join(gw.prefix, 'logs/access.log');
    const from = readFileSync(accessPath).length;
    // [raw request target (latin1: one char = one byte), the uri the line must show, the status]
    const targets: [string, string, number][] = [
      ['/v1/models/\xff', '', 400],
      ['/v1/models/a\xc3\x28b', '', 400],
      ['/v1/models/%ff', '', 400],
      ['/v1/models/%c3%28', '', 400],
      ['/v1/models/%c0%af', '', 400], // overlong "/"
      ['/v1/models/%ed%a0%80', '', 400], // a UTF-16 surrogate
      ['/v1/models/%f4%90%80%80', '', 400], // past U+10FFFF
      ['/v1/models/%f0%9f%98', '', 400], // truncated 4-byte sequence
      ['/v1/models/\xe2\x82\xac', '/v1/models/\u20ac', 404], // valid UTF-8, raw
      ['/v1/models/%F0%9F%98%80', '/v1/models/\u{1F600}', 404], // valid UTF-8, encoded
      ['/v1/models/"q"\\b\\', '/v1/models/"q"\\b\\', 404],
      ['/v1/models/%22%5C%22%7D', '/v1/models/"\\"}', 404],
      ['/v1/models/%01%1f%7f', '/v1/models/\x01\x1f\x7f', 404],
      ['/v1/models/%0d%0a{"status":200}', '/v1/models/\r\n{"status":200}', 404],
      ['/v1/models?q=\xff%ff"\\', '/v1/models', 200],
    ];
    for (let i = 0; i < targets.length; i++) {
      const res = await rawRequest(gw.port, `GET ${targets[i][0]} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${KEY}\r\nx-request-id: hostile-${i}\r\n\r\n`);
      expect(res.status, targets[i][0]).toBe(targets[i][2]);
      expect(JSON.parse(res.body)).toBeTypeOf('object');
    }
    // Raw bytes nginx refuses in the request line itself, and bodies whose model is not UTF-8.
    for (const t of ['/v1/\x01', '/v1/\x7f\x00', '/\xff\xfe HTTP/1.1 \xff']) {
      expect((await rawRequest(gw.port, `GET ${t} HTTP/1.1\r\nHost: gw\r\n\r\n`)).status).toBe(400);
    }
    const jsonModel = Buffer.concat([Buffer.from('{"model":"m\xff\xc3\x28","messages":[]}', 'latin1')]);
    expect((await post(`${gw.url}/v1/chat/completions`, jsonModel, { ...AUTH, 'x-request-id': 'hostile-json' })).status).toBeGreaterThanOrEqual(400);
    const fd = new FormData();
    fd.append('file', new Blob([Buffer.alloc(10, 7)]), 'a.wav');
    fd.append('model', new Blob([Buffer.from([0x6d, 0xff, 0xc3, 0x28])]));
    await (await fetch(`${gw.url}/v1/audio/transcriptions`, { method: 'POST', body: fd, headers: { ...AUTH, 'x-request-id': 'hostile-form' } })).arrayBuffer();

    await line('hostile-form');
    const bytes = readFileSync(accessPath).subarray(from);
    expect(invalidLogBytes(bytes)).toEqual([]);
    const lines = parseLogLines(bytes.toString('utf8'));
    for (let i = 0; i < targets.length; i++) {
      const l = lines.find((x) => x.request_id === `hostile-${i}`);
      expect(l, targets[i][0]).toMatchObject({ uri: targets[i][1], status: targets[i][2] });
      if (targets[i][2] === 400) expect(l!.error_code).toBe('invalid_path');
    }
    expect(lines.filter((x) => x.status === 400 && x.error_code === 'bad_request')).toHaveLength(3);
  });

  it('every line this file produced so far matches the schema', () => {
    expect(invalidLogBytes(readFileSync(join(gw.prefix, 'logs/access.log')))).toEqual([]);
    const log = gw.nginx.accessLog();
    expect(log.split('\n').filter((x) => x).length).toBeGreaterThan(10);
    expect(invalidLogLines(log)).toEqual([]);
    expect(log).not.toContain(KEY);
  });
});

describe('usage ledger at /admin/usage', () => {
  async function admin(method: string, path: string, token = gw.adminToken): Promise<Response> {
    return fetch(`${gw.adminUrl}${path}`, { method, headers: { authorization: `Bearer ${token}` } });
  }
  type Row = { day: string; key_id: string; model: string; requests: number; errors: number; prompt_tokens: number; completion_tokens: number; total_tokens: number };
  async function rows(query = ''): Promise<Row[]> {
    const res = await admin('GET', `/admin/usage${query}`);
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.object).toBe('usage');
    expect(body.zone.capacity).toBeGreaterThan(0);
    return body.data;
  }

  it('needs the admin token, and only the right methods', async () => {
    expect((await fetch(`${gw.adminUrl}/admin/usage`)).status).toBe(401);
    expect((await admin('GET', '/admin/usage', 'wrong-token')).status).toBe(401);
    expect((await admin('POST', '/admin/usage')).status).toBe(405);
    expect((await admin('GET', '/admin/usage/reset')).status).toBe(405);
    const bad = await admin('GET', '/admin/usage?day=yesterday');
    expect(bad.status).toBe(400);
    // Not on the client-facing port.
    expect((await fetch(`${gw.url}/admin/usage`, { headers: { authorization: `Bearer ${gw.adminToken}` } })).status).toBe(404);
  });

  it('counts requests, errors and tokens per key and model, as the backend reported them', async () => {
    const reset = await admin('POST', '/admin/usage/reset');
    expect(reset.status).toBe(200);
    expect((await reset.json()).object).toBe('usage.reset');
    expect(await rows()).toEqual([]);

    let prompt = 0, completion = 0;
    for (let i = 0; i < 2; i++) {
      const out = await (await post(`${gw.url}/v1/chat/completions`, chatBody(CHAT, { n: i }), AUTH)).json();
      prompt += out.usage.prompt_tokens; completion += out.usage.completion_tokens;
    }
    const sse = await (await post(`${gw.url}/v1/chat/completions`, chatBody(CHAT, { stream: true, stream_options: { include_usage: true } }),
      { ...AUTH, 'x-mock-chunks': '7' })).text();
    prompt += sseUsage(sse)!.prompt_tokens; completion += sseUsage(sse)!.completion_tokens;
    await (await post(`${gw.url}/v1/chat/completions`, chatBody(CHAT), { ...AUTH, 'x-mock-status': '500' })).arrayBuffer();
    const emb = await (await post(`${gw.url}/v1/embeddings`, JSON.stringify({ model: EMBED, input: 'x' }), AUTH)).json();
    await (await post(`${gw.url}/v1/chat/completions`, chatBody('no-such-model'), AUTH)).arrayBuffer(); // no model: not counted
    const day = new Date().toISOString().slice(0, 10);
    // The ledger is written in the log phase, just after each response.
    await eventually(async () => expect(await rows()).toEqual([
      { day, key_id: 'team-logs', model: EMBED, requests: 1, errors: 0, prompt_tokens: emb.usage.prompt_tokens, completion_tokens: 0, total_tokens: emb.usage.total_tokens },
      { day, key_id: 'team-logs', model: CHAT, requests: 4, errors: 1, prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion },
    ].sort((a, b) => (a.model < b.model ? -1 : 1))));
    expect(await rows(`?model=${encodeURIComponent(EMBED)}`)).toHaveLength(1);
    expect(await rows('?key_id=someone-else')).toEqual([]);
    expect(await rows(`?day=${day}`)).toHaveLength(2);

    const other = await admin('POST', '/admin/usage/reset?day=2000-01-01');
    expect((await other.json()).deleted).toBe(0);
    expect(await rows()).toHaveLength(2);
    const r = await admin('POST', `/admin/usage/reset?day=${day}`);
    expect((await r.json()).deleted).toBeGreaterThan(0);
    expect(await rows()).toEqual([]);
  });
});

describe('syslog variant of the same line', () => {
  let sock: Socket;
  let port = 0;
  const got: string[] = [];
  beforeAll(async () => {
    sock = createSocket('udp4');
    sock.on('message', (m) => got.push(m.toString('utf8')));
    await new Promise<void>((res) => sock.bind(0, '127.0.0.1', () => res()));
    port = sock.address().port;
  });
  afterAll(() => new Promise<void>((res) => sock.close(() => res())));

  const sys = useGateway(() => ({
    backends: { be_chat: {} },
    models: { [CHAT]: { upstream: 'be_chat' } },
    render: {
      patch: (c: string) => {
        const out = c.replace(/access_log \S+\/logs\/access\.log gw_json;/, `access_log syslog:server=127.0.0.1:${port},tag=gateway gw_json;`);
        if (out === c) throw new Error('nginx.conf.example no longer has the access.log line this test replaces');
        return out;
      },
    },
  }));

  it('sends each line as a syslog message whose payload matches the schema', async () => {
    const id = rid('syslog');
    const res = await post(`${sys.url}/v1/chat/completions`, chatBody(CHAT), { 'x-request-id': id });
    const out = await res.json();
    const msg = await eventually(() => {
      const hit = got.find((m) => m.includes(id));
      expect(hit, `a syslog message with ${id}`).toBeDefined();
      return hit;
    });
    const m = /^<(\d+)>\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ gateway: (\{.*\})$/.exec(msg!);
    expect(m, msg).not.toBeNull();
    expect(logLineProblems(m![2])).toEqual([]);
    expect(JSON.parse(m![2])).toMatchObject({ request_id: id, status: 200, prompt_tokens: out.usage.prompt_tokens });
    expect(sys.nginx.accessLog()).toBe('');
  });
});

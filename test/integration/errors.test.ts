import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, IncomingMessage, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { errorCodes, gwError } from '../../njs/src/core/errors';
import { CHAT, chatBody, post, postHeadersOnly, WHISPER } from '../../tools/clients';
import { distDir, projectRoot } from '../../tools/config';
import { parseLogLines } from '../support/logSchema';
import { rawRequest, RawResponse } from '../support/rawHttp';
import { freePort } from '../../tools/stack';
import { useGateway } from '../support/useGateway';
import { eventually } from '../support/eventually';

const deadPort = await freePort();

// A backend that records the request target it received, byte for byte (the mock vLLM parses it).
const received: string[] = [];
const recorder = createServer((req: IncomingMessage, res: ServerResponse) => {
  if (req.method === 'POST') received.push(req.url ?? '');
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"object":"chat.completion","choices":[]}');
  });
});
await new Promise<void>((res) => recorder.listen(0, '127.0.0.1', () => res()));
const recorderPort = (recorder.address() as AddressInfo).port;
afterAll(() => new Promise<void>((res) => recorder.close(() => res())));

const gw = useGateway({
  backends: { be_chat: { models: [CHAT, WHISPER] }, be_slow: { models: ['slow-model'] } },
  models: {
    [CHAT]: { upstream: 'be_chat' },
    [WHISPER]: { upstream: 'be_chat', capabilities: ['audio'] },
    'slow-model': { upstream: 'be_slow' },
    'dead-model': { upstream: 'be_dead' },
    'rec-model': { upstream: 'be_rec' },
  },
  upstreams: { be_dead: { servers: [`127.0.0.1:${deadPort}`] }, be_rec: { servers: [`127.0.0.1:${recorderPort}`] } },
  // Short client timeouts, so the 408 case takes a second, not a minute.
  render: { patch: (c) => c.replace('keepalive_timeout 75s;', 'keepalive_timeout 75s;\n    client_header_timeout 1s;\n    client_body_timeout 1s;') },
  // A short read timeout so the 504 case takes a second, not fifteen minutes.
  includePatches: {
    'gateway-server.conf': (c) => c.replace(/proxy_read_timeout \d+s;/, 'proxy_read_timeout 1s;'),
    // Without active health checks, so the dead model reaches nginx's own 502 (with them it gets
    // 503 model_unavailable before any connect: test/integration/discovery.test.ts).
    'discovery-server.conf': (c) => c.replace(/js_periodic gw\.ops\.refresh[^;]*;/, ''),
  },
});

async function expectError(res: Response, status: number, code: string): Promise<Record<string, unknown>> {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const body = await res.json();
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  expect(body.error.code).toBe(code);
  return body.error;
}

describe('OpenAI-shaped errors from a real nginx', () => {
  const cases: [string, string, number, string][] = [
    ['empty body', '', 400, 'invalid_json'],
    ['truncated JSON', '{"model":"x"', 400, 'invalid_json'],
    ['not JSON', 'hello', 400, 'invalid_json'],
    ['a JSON array', '[1,2]', 400, 'invalid_json'],
    ['missing model', '{"messages":[]}', 400, 'missing_model'],
    ['numeric model', '{"model":7}', 400, 'invalid_model'],
    ['empty model', '{"model":""}', 400, 'invalid_model'],
  ];
  for (const [name, body, status, code] of cases) {
    it(`${name} → ${status} ${code}`, async () => {
      await expectError(await post(`${gw.url}/v1/chat/completions`, body), status, code);
    });
  }

  it('unknown model → 404 model_not_found naming only what the client sent', async () => {
    const e = await expectError(await post(`${gw.url}/v1/chat/completions`, chatBody('gpt-17')), 404, 'model_not_found');
    expect(e.message).toContain('gpt-17');
    expect(e.message).not.toMatch(/be_chat|127\.0\.0\.1|Qwen/);
    expect(e.param).toBe('model');
  });

  it('GET on a model endpoint → 405 with Allow: POST', async () => {
    const res = await fetch(`${gw.url}/v1/chat/completions`);
    expect(res.headers.get('allow')).toBe('POST');
    await expectError(res, 405, 'method_not_allowed');
  });

  it('unknown path → 404 not_found JSON', async () => {
    await expectError(await fetch(`${gw.url}/nope`), 404, 'not_found');
  });

  it('body over client_max_body_size → 413 JSON', async () => {
    const big = Buffer.alloc(65 * 1024 * 1024, 0x20);
    let res: Response;
    try {
      res = await post(`${gw.url}/v1/chat/completions`, big);
    } catch (e) {
      // nginx may answer 413 and close before the client has sent everything: that is a pass only
      // if the connection was reset, which fetch reports as a network error.
      expect(String((e as Error).cause ?? e)).toMatch(/ECONNRESET|EPIPE|other side closed|SocketError/);
      return;
    }
    await expectError(res, 413, 'request_too_large');
  });

  it('413 is announced before the body is sent when Content-Length is too large', async () => {
    const status = await postHeadersOnly(`${gw.url}/v1/chat/completions`, 100 * 1024 * 1024, '{"model":"x"');
    expect(status.code).toBe(413);
    expect(JSON.parse(status.body).error.code).toBe('request_too_large');
  });

  it('no reachable upstream → 502 upstream_unavailable JSON, not nginx HTML', async () => {
    gw.allowErrorLog(/connect\(\) failed|no live upstreams/);
    await expectError(await post(`${gw.url}/v1/chat/completions`, chatBody('dead-model')), 502, 'upstream_unavailable');
  });

  it('backend too slow → 504 upstream_timeout JSON', async () => {
    gw.allowErrorLog(/upstream timed out/);
    await expectError(await post(`${gw.url}/v1/chat/completions`, chatBody('slow-model'), { 'x-mock-latency-ms': '2500' }), 504, 'upstream_timeout');
  });

  it("a backend's own error passes through untouched", async () => {
    const res = await post(`${gw.url}/v1/chat/completions`, chatBody(CHAT), { 'x-mock-status': '400' });
    expect(res.status).toBe(400);
    expect((await res.json()).error.message).toBe('forced status 400');
  });

  it('routes a multipart transcription by its model form field', async () => {
    const fd = new FormData();
    fd.append('file', new Blob([Buffer.alloc(200_000, 7)], { type: 'audio/wav' }), 'a.wav');
    fd.append('model', WHISPER);
    const res = await fetch(`${gw.url}/v1/audio/transcriptions`, { method: 'POST', body: fd });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-mock-model')).toBe(WHISPER);
    expect((await res.json()).text).toMatch(/^transcribed \d+ bytes$/);
  });

  it('multipart without a model → 400 missing_model', async () => {
    const fd = new FormData();
    fd.append('file', new Blob([Buffer.alloc(1000, 7)]), 'a.wav');
    await expectError(await fetch(`${gw.url}/v1/audio/transcriptions`, { method: 'POST', body: fd }), 400, 'missing_model');
  });

  it('stays up: a normal request still works after all of the above', async () => {
    const res = await post(`${gw.url}/v1/chat/completions`, chatBody(CHAT));
    expect(res.status).toBe(200);
  });
});

/** Asserts a raw response is the catalogue's error for `code`, in OpenAI's JSON shape. */
function expectRawError(res: RawResponse, code: string, status = gwError(code as never).status): void {
  expect(res.status, res.raw.toString('latin1').slice(0, 400)).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  expect(JSON.parse(res.body)).toEqual(JSON.parse(gwError(code as never).body));
}

const H = 'Host: gw\r\n';
/** Requests nginx refuses by itself, before any njs runs: [name, raw bytes, code]. */
const NGINX_ERRORS: [string, string, string][] = [
  ['a bad request line', 'GARBAGE\r\n\r\n', 'bad_request'],
  ['a request line of raw high bytes', '\xff\xfe / HTTP/1.1\r\n' + H + '\r\n', 'bad_request'],
  ['a space in the path', 'GET /v1/a b HTTP/1.1\r\n' + H + '\r\n', 'bad_request'],
  ['%00 in the path', 'GET /v1/models%00 HTTP/1.1\r\n' + H + '\r\n', 'bad_request'],
  ['an unsupported HTTP version', 'GET /health HTTP/2.7\r\n' + H + '\r\n', 'http_version_not_supported'],
  ['HTTP/1.1 without Host', 'GET /health HTTP/1.1\r\n\r\n', 'bad_request'],
  ['two Host headers', 'GET /health HTTP/1.1\r\n' + H + H + '\r\n', 'bad_request'],
  ['two Authorization headers', 'GET /health HTTP/1.1\r\n' + H + 'Authorization: Bearer a\r\nAuthorization: Bearer b\r\n\r\n', 'bad_request'],
  ['a NUL in a header value', 'GET /health HTTP/1.1\r\n' + H + 'X-A: a\x00b\r\n\r\n', 'bad_request'],
  ['Content-Length with Transfer-Encoding', 'POST /v1/chat/completions HTTP/1.1\r\n' + H + 'Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 'bad_request'],
  ['an invalid chunked body', 'POST /v1/chat/completions HTTP/1.1\r\n' + H + 'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n', 'bad_request'],
  ['a header line over large_client_header_buffers', 'GET /health HTTP/1.1\r\n' + H + 'X-Big: ' + 'a'.repeat(9000) + '\r\n\r\n', 'header_too_large'],
  ['a URI over large_client_header_buffers', 'GET /v1/' + 'a'.repeat(9000) + ' HTTP/1.1\r\n' + H + '\r\n', 'uri_too_long'],
  ['an unknown Transfer-Encoding', 'POST /v1/chat/completions HTTP/1.1\r\n' + H + 'Transfer-Encoding: gzip\r\n\r\n', 'not_implemented'],
  ['a Content-Length over client_max_body_size', 'POST /v1/chat/completions HTTP/1.1\r\n' + H + 'Content-Length: 99999999999\r\n\r\n', 'request_too_large'],
  ['a path that is not UTF-8 (raw bytes)', 'GET /v1/models\xff\xc3\x28 HTTP/1.1\r\n' + H + '\r\n', 'invalid_path'],
  ['a path that is not UTF-8 (%-encoded)', 'GET /v1/models/%c3%28 HTTP/1.1\r\n' + H + '\r\n', 'invalid_path'],
];

describe('nginx-made errors are OpenAI JSON too (raw bytes over TCP)', () => {
  for (const [name, raw, code] of NGINX_ERRORS) {
    it(`gateway port: ${name} → ${gwError(code as never).status} ${code}`, async () => {
      gw.allowErrorLog(/client sent|too long|too large|invalid/);
      expectRawError(await rawRequest(gw.port, raw), code);
    });
  }
  const adminPort = () => Number(new URL(gw.adminUrl).port);
  for (const [name, raw, code] of NGINX_ERRORS) {
    it(`admin port: ${name} → ${code}`, async () => {
      gw.allowErrorLog(/client sent|too long|too large|invalid/);
      expectRawError(await rawRequest(adminPort(), raw.replace('/v1/chat/completions', '/admin/keys')), code);
    });
  }
  it('admin port: an unknown path → 404 not_found JSON, a too large body → 413 JSON', async () => {
    expectRawError(await rawRequest(adminPort(), 'GET /nope HTTP/1.1\r\n' + H + 'Connection: close\r\n\r\n'), 'not_found');
    expectRawError(await rawRequest(adminPort(), 'GET /index.html HTTP/1.1\r\n' + H + 'Connection: close\r\n\r\n'), 'not_found');
    gw.allowErrorLog(/too large body/);
    expectRawError(await rawRequest(adminPort(), 'POST /admin/keys HTTP/1.1\r\n' + H + 'Content-Length: 70000\r\n\r\n'), 'request_too_large');
  });
  it('an internal error page cannot be requested directly', async () => {
    expectRawError(await rawRequest(gw.port, 'GET /_gw_error/400 HTTP/1.1\r\n' + H + 'Connection: close\r\n\r\n'), 'not_found');
  });
  it('every code the edge error pages use is in the catalogue', () => {
    for (const [, , code] of NGINX_ERRORS) expect(errorCodes()).toContain(code);
  });

  it('HTTP/0.9 (no headers at all): the body is still the JSON error', async () => {
    const res = await rawRequest(gw.port, 'GET /nope\r\n');
    expect(res.status).toBe(0);
    expect(JSON.parse(res.body)).toEqual(JSON.parse(gwError('not_found').body));
  });

  it('408 cannot be JSON: nginx closes a timed-out request without answering (logged as 408)', async () => {
    gw.allowErrorLog(/timed out/);
    const head = await rawRequest(gw.port, 'GET /health HTTP/1.1\r\n' + H + 'x-request-id: t408-head\r\n', { halfClose: false });
    expect(head.raw.length).toBe(0);
    const body = await rawRequest(gw.port, 'POST /v1/chat/completions HTTP/1.1\r\n' + H + 'x-request-id: t408-body\r\nContent-Length: 100\r\n\r\n{"mo', { halfClose: false });
    expect(body.raw.length).toBe(0);
    await eventually(() => {
      const lines = parseLogLines(readFileSync(join(gw.prefix, 'logs/access.log'), 'utf8'));
      expect(lines.find((l) => l.request_id === 't408-body')).toMatchObject({ status: 408 });
    });
  });
});

describe('the backend receives the path that was authorized and logged', () => {
  const proxied = (path: string, id: string) => 'POST ' + path + ' HTTP/1.1\r\n' + H + 'Content-Type: application/json\r\nConnection: close\r\n' +
    `x-request-id: ${id}\r\nContent-Length: ${chatBody('rec-model').length}\r\n\r\n` + chatBody('rec-model');

  it('a plain path (and its query string) reaches the backend exactly as logged', async () => {
    received.length = 0;
    const ok = await rawRequest(gw.port, proxied('/v1/chat/completions', 'path-plain'), { halfClose: false });
    expect(ok.status).toBe(200);
    const q = await rawRequest(gw.port, proxied('/v1/chat/completions?api-version=1', 'path-query'), { halfClose: false });
    expect(q.status).toBe(200);
    expect(received).toEqual(['/v1/chat/completions', '/v1/chat/completions?api-version=1']);
    // nginx writes the access-log line after the response is sent: wait for it.
    await eventually(() => {
      const lines = parseLogLines(readFileSync(join(gw.prefix, 'logs/access.log'), 'utf8'));
      expect(lines.find((l) => l.request_id === 'path-plain')).toMatchObject({ uri: '/v1/chat/completions', endpoint: 'chat', status: 200 });
    });
  });

  const refused: [string, string][] = [
    ['a backslash and a dot segment', '/v1/..\\health'],
    ['%2F-encoded dot segments', '/v1/chat/completions/..%2F..%2Fembeddings'],
    ['a %2e%2e dot segment', '/v1/chat/%2e%2e/embeddings'],
    ['a dot segment', '/v1/chat/../embeddings'],
    ['a "." segment', '/v1/./chat/completions'],
    ['a path that climbs into /v1/', '/x/../v1/chat/completions'],
    ['an empty segment', '/v1//chat/completions'],
    ['a leading double slash', '//v1/chat/completions'],
    ['an encoded slash', '/v1/chat%2Fcompletions'],
    ['an encoded letter', '/v1/chat/c%6Fmpletions'],
    ['an encoded CR LF', '/v1/chat/completions%0d%0aX-Injected:%201'],
    ['an encoded space', '/v1/chat/completions%20'],
    ['a trailing slash', '/v1/chat/completions/'],
  ];
  for (const [name, path] of refused) {
    it(`${name} (${path}) → 400 invalid_path, nothing proxied`, async () => {
      received.length = 0;
      expectRawError(await rawRequest(gw.port, proxied(path, 'path-bad'), { halfClose: false }), 'invalid_path');
      expect(received).toEqual([]);
    });
  }
  // Differential, on the real nginx: random request targets built from the pieces that normalize
  // (dots, slashes, backslashes, %-escapes of them, "?", "#", ";"). Whatever nginx makes of one,
  // either the backend receives exactly the bytes the client sent, the access log's uri is that
  // path and the key check saw it, or nothing is proxied at all.
  it('property: a proxied path is byte for byte the one sent and logged; anything else is not proxied', async () => {
    const hostile = fc.constantFrom('/', '.', '..', '/.', '/..', '%2F', '%2f', '%2e', '%2E', '%2e%2e', '\\', '%5C', '%', '%41', '%25',
      '%20', ';', '%3B', '%3F', '?', '?a=/../b', '#', ':', '@', '//', '%00', '%ff', '\xc3\xa9', '%c3%a9');
    const plain = fc.constantFrom('a', 'chat', '/completions', '/b', 'x.y', '..z', '-', '_', '~');
    const piece = fc.oneof({ arbitrary: plain, weight: 5 }, { arbitrary: hostile, weight: 1 });
    // Only the inference endpoints are proxied (gateway-server.conf), so most targets start with one.
    const prefix = fc.oneof({ arbitrary: fc.constantFrom('/v1/chat/completions', '/v1/embeddings', '/v1/'), weight: 6 },
      { arbitrary: fc.constantFrom('/v1', '/', '/x/../v1/', '/v1/./', '//v1/', '/V1/', '/v1/%2e/'), weight: 1 });
    const seen: { id: string; target: string; status: number }[] = [];
    let n = 0;
    await fc.assert(fc.asyncProperty(prefix, fc.array(piece, { minLength: 0, maxLength: 8 }), async (pre, parts) => {
      const target = pre + parts.join('');
      const id = `prop-${n++}`;
      received.length = 0;
      const res = await rawRequest(gw.port, proxied(target, id), { halfClose: false });
      seen.push({ id, target, status: res.status });
      if (received.length > 0) {
        expect(res.status).toBe(200);
        expect(received).toEqual([target]);
      } else {
        expect(res.status).toBeGreaterThanOrEqual(400);
        expect(res.status).toBeLessThan(500);
        expect(JSON.parse(res.body).error.code).toMatch(/^(invalid_path|bad_request|not_found|method_not_allowed)$/);
      }
    }), { seed: 1313, numRuns: 300 });
    gw.allowErrorLog(/client sent|invalid/);
    const proxiedOnes = seen.filter((x) => x.status === 200);
    expect(proxiedOnes.length).toBeGreaterThan(10); // the generator does reach the backend
    // nginx writes a request's log line after its response went out: the last ones may trail.
    await eventually(() => {
      const lines = parseLogLines(readFileSync(join(gw.prefix, 'logs/access.log'), 'utf8'));
      for (const x of proxiedOnes) {
        const l = lines.find((y) => y.request_id === x.id);
        expect(l, x.target).toMatchObject({ uri: x.target.split('?')[0], upstream: 'be_rec' });
      }
    }, { timeoutMs: 5_000 });
  });
});

// Fail closed: the request goes on only when $gw_auth is exactly "ok". Here $gw_auth comes from a
// request header instead of gw.auth, so the test can feed it any value the handler could return.
describe('API-key check fails closed on any value but "ok"', () => {
  const fake = useGateway({
    auth: true,
    backends: { be_chat: {} },
    models: { [CHAT]: { upstream: 'be_chat' } },
    includePatches: {
      'gateway-http.conf': (c) => c.replace('js_set $gw_auth gw.auth;', 'map $http_x_test_auth $gw_auth { default $http_x_test_auth; }'),
    },
  });
  const paths: [string, 'GET' | 'POST'][] = [['/v1/chat/completions', 'POST'], ['/v1/models', 'GET'], [`/v1/models/${CHAT}`, 'GET'], ['/v1/metadata', 'GET']];
  const call = (path: string, method: string, value: string | null) => fetch(`${fake.url}${path}`, {
    method, body: method === 'POST' ? chatBody(CHAT) : undefined,
    headers: { 'content-type': 'application/json', ...(value === null ? {} : { 'x-test-auth': value }) },
  });

  // (nginx trims header values, so " ok" cannot be sent this way; gw.auth never returns it either.)
  for (const value of [null, '', 'OK', 'Ok', 'okay', 'pass', '1', 'true', '200', '0', 'ok,ok', '500']) {
    it(`$gw_auth = ${JSON.stringify(value)} → 500 internal_error on every keyed location, never a pass`, async () => {
      const before = fake.mocks.be_chat.stats.byPath['/v1/chat/completions'] ?? 0;
      for (const [path, method] of paths) {
        const res = await call(path, method, value);
        await expectError(res, 500, 'internal_error');
      }
      expect(fake.mocks.be_chat.stats.byPath['/v1/chat/completions'] ?? 0).toBe(before);
    });
  }
  it('401 and 429 keep their status', async () => {
    expect((await call('/v1/chat/completions', 'POST', '401')).status).toBe(401);
    const r = await call('/v1/models', 'GET', '429');
    expect(r.status).toBe(429);
    expect(r.headers.get('x-request-id')).toMatch(/^[0-9a-f]{32}$/);
  });
  it('"ok" passes (the test above can fail)', async () => {
    const before = fake.mocks.be_chat.stats.byPath['/v1/chat/completions'] ?? 0;
    for (const [path, method] of paths) expect((await call(path, method, 'ok')).status, path).toBe(200);
    expect(fake.mocks.be_chat.stats.byPath['/v1/chat/completions']).toBe(before + 1);
  });
});

// The QuickJS failure of issue 13: the auth handler's module code throws before gw.auth runs (there,
// `require` is not defined), so the js_set yields an empty value. Simulated on any engine by a copy
// of the bundle whose auth group throws when loaded.
const throwingDist = mkdtempSync(join(tmpdir(), 'gw-dist-throw-'));
cpSync(distDir, throwingDist, { recursive: true });
{
  const f = join(throwingDist, 'gateway.js');
  const js = readFileSync(f, 'utf8');
  // The loader of the group that holds gw.auth (njs/handlers.json).
  const groups = (JSON.parse(readFileSync(join(projectRoot, 'njs/handlers.json'), 'utf8')) as { groups: Record<string, string[]> }).groups;
  const g = Object.keys(groups).find((k) => groups[k].includes('auth'));
  const patched = js.replace(`  if (name === "${g}") {`, `  if (name === "${g}") { throw new ReferenceError("require is not defined (test)");`);
  if (patched === js) throw new Error(`dist/gateway.js has no loader branch for the group "${g}" (the group of gw.auth) to patch`);
  writeFileSync(f, patched);
}

describe('API-key check fails closed when the auth handler throws', () => {
  const broken = useGateway({
    auth: true,
    backends: { be_chat: {} },
    models: { [CHAT]: { upstream: 'be_chat' } },
    render: { distDir: throwingDist },
  });
  it('a keyless POST, a keyed POST and GET /v1/models → 500 internal_error; /health still answers', async () => {
    broken.allowErrorLog(/require is not defined|js exception|js_set/);
    await expectError(await post(`${broken.url}/v1/chat/completions`, chatBody(CHAT)), 500, 'internal_error');
    await expectError(await post(`${broken.url}/v1/chat/completions`, chatBody(CHAT), { authorization: 'Bearer sk-anything' }), 500, 'internal_error');
    await expectError(await fetch(`${broken.url}/v1/models`), 500, 'internal_error');
    expect((await fetch(`${broken.url}/health`)).status).toBe(200);
    expect(broken.mocks.be_chat.stats.byPath['/v1/chat/completions'] ?? 0).toBe(0);
    expect(broken.errorLogSinceTestStart()).toMatch(/require is not defined/);
  });
});

// gw.route's last resort (ngx/failed.ts, a cold module loaded only then): an exception in the middle
// of routing answers 500 internal_error, logs what failed, and reaches no backend. Simulated by a
// copy of the bundle whose route throws right after the model read.
const routeThrowingDist = mkdtempSync(join(tmpdir(), 'gw-dist-route-throw-'));
cpSync(distDir, routeThrowingDist, { recursive: true });
{
  const f = join(routeThrowingDist, 'gateway.js');
  const js = readFileSync(f, 'utf8');
  const anchor = 'const model = canonicalModel(t, requested);';
  if (js.split(anchor).length !== 2) throw new Error(`dist/gateway.js holds "${anchor}" other than once: update this test's anchor in gw.route`);
  writeFileSync(f, js.replace(anchor, 'if (requested !== "") throw new TypeError("route failure (test)");\n' + anchor));
}

describe('routing fails closed when gw.route throws', () => {
  const broken = useGateway({
    backends: { be_chat: {} },
    models: { [CHAT]: { upstream: 'be_chat' } },
    render: { distDir: routeThrowingDist },
  });
  it('a routable POST → 500 internal_error, the failure in the error log, nothing proxied', async () => {
    broken.allowErrorLog(/route failed: TypeError: route failure \(test\)/);
    await expectError(await post(`${broken.url}/v1/chat/completions`, chatBody(CHAT)), 500, 'internal_error');
    expect(broken.mocks.be_chat.stats.byPath['/v1/chat/completions'] ?? 0).toBe(0);
    expect(broken.errorLogSinceTestStart()).toMatch(/gw: route failed: TypeError: route failure \(test\)/);
  });
});

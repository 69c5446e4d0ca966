import { describe, expect, it } from 'vitest';
import { CHAT, chatBody, post, postHeadersOnly, WHISPER } from '../support/clients';
import { freePort } from '../support/stack';
import { useGateway } from '../support/useGateway';

const deadPort = await freePort();

const gw = useGateway({
  backends: { be_chat: { models: [CHAT, WHISPER] }, be_slow: { models: ['slow-model'] } },
  models: {
    [CHAT]: { upstream: 'be_chat' },
    [WHISPER]: { upstream: 'be_chat', capabilities: ['audio'] },
    'slow-model': { upstream: 'be_slow' },
    'dead-model': { upstream: 'be_dead' },
  },
  upstreams: { be_dead: { servers: [`127.0.0.1:${deadPort}`] } },
  // A short read timeout so the 504 case takes a second, not fifteen minutes.
  includePatches: {
    'gateway-server.conf': (c) => c.replace(/proxy_read_timeout \d+s;/, 'proxy_read_timeout 1s;'),
    // Without active health checks, so the dead model reaches nginx's own 502 (with them it gets
    // 503 model_unavailable before any connect: test/integration/discovery.test.ts).
    'discovery-server.conf': (c) => c.replace(/js_periodic gw\.refresh[^;]*;/, ''),
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

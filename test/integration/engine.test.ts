/**
 * The same bundle on either njs engine (GW_JS_ENGINE; .ci/run runs the suite on njs 0.8.9, on njs
 * 1.0.x and on njs 1.0.x with js_engine qjs). What differs between the engines is tested here on
 * whichever the run uses: QuickJS reuses a JS context for later requests (js_context_reuse, 128 by
 * default), so module state must not carry one request's facts into the next; js_preload_object
 * does nothing on QuickJS, so the routing table must also work without it; a keyless request is
 * refused whatever the engine.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { CHAT, chatBody, EMBED, post } from '../../tools/clients';
import { jsEngineFromEnv } from '../../tools/config';
import { LogLine, waitForLogLine } from '../support/logSchema';
import { useGateway } from '../support/useGateway';

const KEY = 'sk-gw-engine-test-key-0123456789abcdef';
const keysDir = mkdtempSync(join(tmpdir(), 'gw-enginekeys-'));
chmodSync(keysDir, 0o755);
const keysFile = join(keysDir, 'keys.json');
writeFileSync(keysFile, JSON.stringify({ keys: [
  { id: 'team-engine', hash: `sha256:${createHash('sha256').update(KEY).digest('hex')}`, models: '*' },
] }));
chmodSync(keysFile, 0o644);
const AUTH = { authorization: `Bearer ${KEY}` };

// One worker: every request lands in the same worker, so (on QuickJS) in a reused context.
const gw = useGateway({
  auth: true,
  workers: 1,
  env: { GW_KEYS_FILE: keysFile },
  backends: { be_chat: {}, be_embed: {} },
  models: { [CHAT]: { upstream: 'be_chat' }, [EMBED]: { upstream: 'be_embed', capabilities: ['embeddings'] } },
});

const engine = jsEngineFromEnv();

function rid(tag: string): string {
  return `test-${tag}-${randomBytes(6).toString('hex')}`;
}
function line(id: string): Promise<LogLine> {
  return waitForLogLine(() => gw.nginx.accessLog(), id);
}

/**
 * POST on a connection of its own: after a reload the old worker closes its idle keep-alive
 * connections, which fetch's pool would otherwise reuse ("other side closed").
 */
function postFresh(url: string, body: string, headers: Record<string, string>): Promise<{ status: number; model: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, model: res.headers['x-mock-model'] as string | undefined }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe(`the bundle on js_engine ${engine ?? 'default'}`, () => {
  it('nginx runs the engine GW_JS_ENGINE selects', () => {
    console.log(`engine.test.ts: nginx ${gw.rt.version} (${gw.rt.suite ?? gw.rt.source}) with js_engine ${engine ?? 'default (njs)'}`);
    const conf = readFileSync(gw.nginx.confPath, 'utf8');
    if (engine) expect(conf).toMatch(new RegExp(`^\\s*js_engine ${engine};$`, 'm'));
    else expect(conf).not.toMatch(/^\s*js_engine /m);
    expect(gw.rt.jsEngine).toBe(engine);
  });

  it('refuses a request without a key with 401, and one with a wrong key', async () => {
    const none = await post(`${gw.url}/v1/chat/completions`, chatBody(CHAT));
    expect(none.status).toBe(401);
    expect((await none.json()).error).toMatchObject({ type: expect.any(String), code: expect.any(String) });
    const wrong = await post(`${gw.url}/v1/chat/completions`, chatBody(CHAT), { authorization: 'Bearer sk-gw-not-a-key-0123456789abcdef' });
    expect(wrong.status).toBe(401);
    expect(gw.mocks.be_chat.stats.byPath['/v1/chat/completions'] ?? 0).toBe(0);
  });

  it('a stream, an aborted stream and plain answers in turn: each log line has its own stream, ttft and tokens', async () => {
    const streamId = rid('s');
    const s = await post(`${gw.url}/v1/chat/completions`, chatBody(CHAT, { stream: true, stream_options: { include_usage: true } }),
      { ...AUTH, 'x-request-id': streamId, 'x-mock-chunks': '3' });
    await s.text();
    const plainId = rid('p');
    const p = await post(`${gw.url}/v1/chat/completions`, chatBody(CHAT), { ...AUTH, 'x-request-id': plainId });
    const pOut = await p.json();
    // A client that leaves mid-stream: the body filter never sees `last`.
    const abortId = rid('a');
    const ac = new AbortController();
    const a = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', signal: ac.signal,
      body: chatBody(CHAT, { stream: true, stream_options: { include_usage: true } }),
      headers: { 'content-type': 'application/json', ...AUTH, 'x-request-id': abortId, 'x-mock-chunks': '50', 'x-mock-chunk-delay-ms': '100' } });
    const reader = a.body!.getReader();
    await reader.read();
    ac.abort();
    await reader.read().catch(() => undefined);
    await line(abortId);
    const embedId = rid('e');
    const e = await post(`${gw.url}/v1/embeddings`, JSON.stringify({ model: EMBED, input: 'hello' }), { ...AUTH, 'x-request-id': embedId });
    const eOut = await e.json();

    expect(await line(streamId)).toMatchObject({ stream: true, status: 200, completion_tokens: 3 });
    expect((await line(streamId)).ttft_ms).toEqual(expect.any(Number));
    // The client left after the first chunk, which is its time to first token all the same.
    expect(await line(abortId)).toMatchObject({ stream: true, client_abort: true });
    expect((await line(abortId)).ttft_ms).toEqual(expect.any(Number));
    expect(await line(plainId)).toMatchObject({ stream: false, ttft_ms: null, status: 200,
      prompt_tokens: pOut.usage.prompt_tokens, completion_tokens: pOut.usage.completion_tokens, total_tokens: pOut.usage.total_tokens });
    expect(await line(embedId)).toMatchObject({ stream: false, ttft_ms: null, status: 200,
      prompt_tokens: eOut.usage.prompt_tokens, total_tokens: eOut.usage.total_tokens });
  });

  it('routes right without js_preload_object (a hand-written routes.conf), request after request', async () => {
    const routesConf = join(gw.prefix, 'routes/routes.conf');
    const before = readFileSync(routesConf, 'utf8');
    const without = before.replace(/^js_preload_object .*$/m, '');
    expect(without).not.toBe(before);
    writeFileSync(routesConf, without);
    try {
      await gw.nginx.reload();
      // One worker, alternating models: on QuickJS all but the first run in a reused context.
      for (let i = 0; i < 40; i++) {
        const chat = i % 2 === 0;
        const res = chat
          ? await postFresh(`${gw.url}/v1/chat/completions`, chatBody(CHAT), AUTH)
          : await postFresh(`${gw.url}/v1/embeddings`, JSON.stringify({ model: EMBED, input: 'x' }), AUTH);
        expect(res.status).toBe(200);
        expect(res.model).toBe(chat ? CHAT : EMBED);
      }
      const unknown = await postFresh(`${gw.url}/v1/chat/completions`, chatBody('no-such-model'), AUTH);
      expect(unknown.status).toBe(404);
    } finally {
      writeFileSync(routesConf, before);
      await gw.nginx.reload();
    }
  });
});

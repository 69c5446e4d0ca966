/**
 * The real-backend tier: the gateway in front of llama.cpp's OpenAI-compatible server (llama-server
 * from Debian's packages, tools/findLlama.ts) serving tiny random-weight llamas the suite
 * writes itself (tools/gguf.ts), next to a mock vLLM. Everything goes through the gateway
 * with the openai SDK or fetch, and is checked against what the real server says directly.
 * Differences from vLLM that matter to the gateway: docs/real-backend.md.
 *
 * Where llama-server cannot be provisioned (no apt, no network, not x86_64) the tier is skipped
 * with the reason printed; GW_REAL_BACKEND=require makes that a failure instead.
 */
import OpenAI from 'openai';
import { closeSync, constants as fsc, mkdtempSync, openSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ocrBody, post } from '../../tools/clients';
import { findLlama, LlamaServer, startLlamaServer } from '../../tools/findLlama';
import { tinyLlamaFile } from '../../tools/gguf';
import { eventually } from '../support/eventually';
import { waitForLogLine } from '../support/logSchema';
import { sleep } from '../../tools/nginx';
import { parseExposition, sampleValue } from '../support/prometheus';
import { freePort } from '../../tools/stack';
import { useGateway } from '../support/useGateway';

const found = findLlama();
if (!found.ok) {
  const msg = `real-backend tier SKIPPED: llama-server is not available here: ${found.reason}`;
  if (process.env.GW_REAL_BACKEND === 'require') throw new Error(`${msg} (GW_REAL_BACKEND=require)`);
  process.stderr.write(`${msg}\n`);
}

const CHAT_M = 'tiny-llama-chat';
const EMBED_M = 'tiny-llama-embed';
const LATE_M = 'tiny-llama-late';
const MOCK_M = 'mock/next-to-llama';
const EMBED_KEY = 'sk-llama-embed-backend-key';
/**
 * Context per slot of the chat server (--ctx-size is shared by its -np slots, and the server's
 * errors report the slot's): long enough that an aborted stream would still be generating.
 */
const CTX = 8192;
const SLOTS = 2;

async function metricsOf(url: string): Promise<ReturnType<typeof parseExposition>> {
  const res = await fetch(`${url}/metrics`);
  expect(res.status).toBe(200);
  return parseExposition(await res.text());
}

if (!found.ok) {
  const reason = found.reason;
  describe('real backend (llama.cpp llama-server)', () => {
    it.skip(`SKIPPED: ${reason}`, () => undefined);
  });
}

describe.runIf(found.ok)(`real backend: llama.cpp llama-server ${found.ok ? found.rt.version : ''}`, () => {
  const rt = found.ok ? found.rt : (null as never);
  const ports = { chat: 0, embed: 0, late: 0 };
  // The late server's model path is a symlink to a FIFO: llama-server listens, then blocks opening
  // the model, so its /health answers 503 "Loading model" for as long as the test wants.
  let lateDir = '';
  let fifo = '';
  let lateLink = '';
  let chatModel = '';
  const servers: Record<string, LlamaServer> = {};

  beforeAll(async () => {
    chatModel = tinyLlamaFile({ seed: 19, kind: 'chat' });
    const embedModel = tinyLlamaFile({ seed: 20, kind: 'embedding' });
    Object.assign(ports, { chat: await freePort(), embed: await freePort(), late: await freePort() });
    lateDir = mkdtempSync(join(tmpdir(), 'gw-llama-late-'));
    fifo = join(lateDir, 'model.fifo');
    lateLink = join(lateDir, 'model.gguf');
    execFileSync('mkfifo', [fifo]);
    symlinkSync(fifo, lateLink);
    servers.chat = startLlamaServer(rt, { model: chatModel, port: ports.chat, alias: CHAT_M, ctxSize: CTX * SLOTS, parallel: SLOTS });
    // Started with --api-key, as a vLLM behind the gateway may be: only the gateway holds its key.
    servers.embed = startLlamaServer(rt, { model: embedModel, port: ports.embed, alias: EMBED_M, embeddings: true, extraArgs: ['--api-key', EMBED_KEY] });
    // --fit (the default) opens the model once to size the context and shrugs off a failure there; the
    // real load opens it again. The first open is the one blocked on the FIFO (see releaseLate).
    servers.late = startLlamaServer(rt, { model: lateLink, port: ports.late, alias: LATE_M, extraArgs: ['--fit', 'on'] });
    await Promise.all([servers.chat.ready(), servers.embed.ready()]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all(Object.values(servers).map((s) => s.stop()));
    if (lateDir) rmSync(lateDir, { recursive: true, force: true });
  });

  const gw = useGateway(() => ({
    backends: { be_mock: { models: [MOCK_M] } },
    models: {
      [CHAT_M]: { upstream: 'be_llama', aliases: ['chat'], max_inflight: 2, max_queue: 4 },
      [EMBED_M]: { upstream: 'be_llama_embed', capabilities: ['embeddings'] },
      [LATE_M]: { upstream: 'be_late' },
      [MOCK_M]: { upstream: 'be_mock' },
    },
    upstreams: {
      be_llama: { servers: [`127.0.0.1:${ports.chat}`] },
      be_llama_embed: { servers: [`127.0.0.1:${ports.embed}`], api_key_env: 'GW_TEST_LLAMA_KEY' },
      be_late: { servers: [`127.0.0.1:${ports.late}`] },
    },
    env: { GW_TEST_LLAMA_KEY: EMBED_KEY },
    render: { patch: (c) => c.replace('env GW_STATE_DIR;', 'env GW_STATE_DIR;\nenv GW_TEST_LLAMA_KEY;') },
  }));

  const client = () => new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const direct = () => new OpenAI({ baseURL: `${servers.chat.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const rid = (tag: string) => `real-${tag}-${Math.random().toString(16).slice(2, 10)}`;
  const logLine = (id: string) => waitForLogLine(() => gw.nginx.accessLog(), id);
  const admin = (path: string, method = 'GET') => fetch(`${gw.adminUrl}${path}`, { method, headers: { authorization: `Bearer ${gw.adminToken}` } });

  it('chat completion through the gateway: the server\'s answer and usage, logged as the server counted', async () => {
    const id = rid('chat');
    // seed and cache_prompt are llama.cpp extensions the gateway forwards untouched.
    const ask = { model: 'chat', messages: [{ role: 'user' as const, content: 'hello there' }], max_tokens: 8, seed: 11, cache_prompt: false };
    const out = await client().chat.completions.create(ask, { headers: { 'x-request-id': id } });
    const ref = await direct().chat.completions.create(ask);
    expect(out.choices[0].message.content).toBe(ref.choices[0].message.content);
    expect(out.object).toBe('chat.completion');
    expect(out.model).toBe(CHAT_M); // --alias: llama-server names itself, whatever the request said
    expect(out.choices[0].message.role).toBe('assistant');
    expect(out.usage!.completion_tokens).toBeGreaterThan(0);
    expect(out.usage!.completion_tokens).toBeLessThanOrEqual(8);
    // Byte-level vocabulary: BOS + "▁" (3 bytes) + the ChatML-templated prompt, one token per byte.
    const templated = '<|im_start|>user\nhello▁there<|im_end|>\n<|im_start|>assistant\n';
    expect(out.usage!.prompt_tokens).toBe(1 + 3 + Buffer.byteLength(templated));
    const l = await logLine(id);
    expect(l).toMatchObject({
      status: 200, model: CHAT_M, model_requested: 'chat', upstream: 'be_llama', upstream_addr: `127.0.0.1:${ports.chat}`,
      prompt_tokens: out.usage!.prompt_tokens, completion_tokens: out.usage!.completion_tokens, total_tokens: out.usage!.total_tokens,
    });
  });

  it('streamed chat with include_usage: the SDK gets the server\'s chunks; access log and usage ledger hold its usage', async () => {
    expect((await admin('/admin/usage/reset', 'POST')).status).toBe(200);
    const id = rid('stream');
    const stream = await client().chat.completions.create(
      { model: CHAT_M, messages: [{ role: 'user', content: 'tell me a story' }], max_tokens: 24, stream: true, stream_options: { include_usage: true } },
      { headers: { 'x-request-id': id } });
    let text = '';
    let chunks = 0;
    let usage: OpenAI.CompletionUsage | undefined | null;
    let finish: string | null = null;
    for await (const c of stream) {
      chunks++;
      if (c.choices[0]?.delta?.content) text += c.choices[0].delta.content;
      if (c.choices[0]?.finish_reason) finish = c.choices[0].finish_reason;
      if (c.usage) usage = c.usage;
    }
    expect(chunks).toBeGreaterThan(2);
    expect(finish).toMatch(/^(length|stop)$/);
    expect(usage).toBeTruthy();
    expect(usage!.total_tokens).toBe(usage!.prompt_tokens + usage!.completion_tokens);
    expect(text.length).toBeGreaterThan(0);
    const l = await logLine(id);
    expect(l).toMatchObject({
      status: 200, stream: true, model: CHAT_M, endpoint: 'chat', client_abort: false,
      prompt_tokens: usage!.prompt_tokens, completion_tokens: usage!.completion_tokens, total_tokens: usage!.total_tokens,
    });
    expect(l.ttft_ms).toBeGreaterThanOrEqual(0);
    await eventually(async () => {
      const res = await admin(`/admin/usage?model=${encodeURIComponent(CHAT_M)}`);
      const rows = (await res.json()).data;
      expect(rows).toEqual([expect.objectContaining({
        model: CHAT_M, requests: 1, errors: 0,
        prompt_tokens: usage!.prompt_tokens, completion_tokens: usage!.completion_tokens, total_tokens: usage!.total_tokens,
      })]);
    }, { timeoutMs: 5_000 });
  });

  it('streamed bytes pass through unchanged: same seed, same tokens, split UTF-8 and all', async () => {
    // Fixed seed and no prompt cache: llama-server samples the same tokens for the same request, so
    // the gateway's stream must equal the direct one except for the id, timestamps and timings.
    const body = JSON.stringify({ model: CHAT_M, messages: [{ role: 'user', content: 'bytes' }], max_tokens: 40, seed: 42, cache_prompt: false,
      stream: true, stream_options: { include_usage: true } });
    const viaGw = await (await post(`${gw.url}/v1/chat/completions`, body)).text();
    const straight = await (await post(`${servers.chat.url}/v1/chat/completions`, body)).text();
    const norm = (t: string) => t.replace(/"(id|created)":("[^"]*"|\d+)/g, '"$1":0').replace(/"timings":\{[^}]*\}/g, '"timings":{}');
    expect(norm(viaGw)).toBe(norm(straight));
    expect(viaGw.split('\n\n').filter((e) => e.startsWith('data: {')).length).toBeGreaterThan(10);
  });

  it('completions, streamed and not, carry the server\'s usage into the log', async () => {
    const id = rid('cmpl');
    const out = await client().completions.create({ model: CHAT_M, prompt: 'Once upon a time', max_tokens: 6 }, { headers: { 'x-request-id': id } });
    expect(out.object).toBe('text_completion');
    expect(out.usage!.prompt_tokens).toBe(1 + 3 + Buffer.byteLength('Once▁upon▁a▁time'));
    expect(await logLine(id)).toMatchObject({ endpoint: 'completions', status: 200, prompt_tokens: out.usage!.prompt_tokens, completion_tokens: out.usage!.completion_tokens });

    const sid = rid('cmpl-stream');
    const stream = await client().completions.create({ model: CHAT_M, prompt: 'abc', max_tokens: 5, stream: true, stream_options: { include_usage: true } }, { headers: { 'x-request-id': sid } });
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const c of stream) if (c.usage) usage = c.usage;
    expect(usage).toBeTruthy();
    expect(await logLine(sid)).toMatchObject({ stream: true, prompt_tokens: usage!.prompt_tokens, completion_tokens: usage!.completion_tokens });
  });

  it('embeddings from a second llama-server (--embeddings --pooling mean, --api-key), usage logged', async () => {
    const id = rid('emb');
    // The client's own key is not the backend's: the gateway swaps in the upstream's (api_key_env).
    const out = await new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'sk-client-key-the-backend-never-sees', maxRetries: 0 })
      .embeddings.create({ model: EMBED_M, input: ['hello', 'world!'] }, { headers: { 'x-request-id': id } });
    expect(out.data).toHaveLength(2);
    expect(out.data[0].embedding).toHaveLength(64);
    expect(out.data[1].index).toBe(1);
    const norm = Math.hypot(...out.data[0].embedding);
    expect(norm).toBeCloseTo(1, 3); // llama-server normalizes embeddings (L2) by default
    expect(out.usage.prompt_tokens).toBeGreaterThan(0);
    const refused = await post(`${servers.embed.url}/v1/embeddings`, JSON.stringify({ input: 'x' }), { authorization: 'Bearer sk-client-key-the-backend-never-sees' });
    expect(refused.status).toBe(401); // the server does check keys
    // llama.cpp's embeddings usage has no completion_tokens; the gateway counts that as 0, as for vLLM.
    expect(await logLine(id)).toMatchObject({ endpoint: 'embeddings', status: 200, upstream: 'be_llama_embed', prompt_tokens: out.usage.prompt_tokens, completion_tokens: 0 });
  });

  it('GET /v1/models is the union of the llama.cpp servers and the mock, in OpenAI\'s shape', async () => {
    await eventually(async () => {
      const res = await fetch(`${gw.url}/v1/models`);
      expect(res.status).toBe(200);
      const body = await res.json() as { object: string; data: { id: string; owned_by: string; object: string }[] };
      expect(body.object).toBe('list');
      const byId = Object.fromEntries(body.data.map((m) => [m.id, m]));
      expect(Object.keys(byId).sort()).toEqual([CHAT_M, EMBED_M, MOCK_M, 'chat'].sort());
      expect(byId[CHAT_M].owned_by).toBe('llamacpp');
      expect(byId[MOCK_M].owned_by).toBe('vllm');
    });
    // llama.cpp states its context as meta.n_ctx (per slot); /v1/metadata passes it on as max_model_len.
    const md = await (await fetch(`${gw.url}/v1/metadata`)).json() as { models: { id: string; max_model_len: number | null }[] };
    expect(md.models.find((m) => m.id === CHAT_M)!.max_model_len).toBe(CTX);
  });

  it('/metrics?backends=1 merges llama.cpp\'s own metrics under gw_upstream/gw_server labels', async () => {
    await client().chat.completions.create({ model: CHAT_M, messages: [{ role: 'user', content: 'count me' }], max_tokens: 3 });
    const direct = sampleValue((await metricsOf(servers.chat.url)).fams, 'llamacpp:tokens_predicted_total', {});
    expect(direct).toBeGreaterThan(0);
    const res = await fetch(`${gw.url}/metrics?backends=1`);
    expect(res.status).toBe(200);
    const text = await res.text();
    const { fams } = parseExposition(text);
    const predicted = fams.find((f) => f.name === 'llamacpp:tokens_predicted_total');
    expect(predicted, text.slice(-2000)).toBeTruthy();
    expect(predicted!.metrics.map((m) => m.labels!.gw_upstream).sort()).toEqual(['be_llama', 'be_llama_embed']);
    const chat = predicted!.metrics.find((m) => m.labels!.gw_upstream === 'be_llama')!;
    expect(chat.labels).toEqual({ gw_upstream: 'be_llama', gw_server: `127.0.0.1:${ports.chat}` });
    expect(Number(chat.value)).toBe(direct); // nothing ran on that server in between
    // Two servers, one family: declared once, so the exposition stays valid.
    expect(text.match(/^# TYPE llamacpp:tokens_predicted_total /gm)).toHaveLength(1);
    // The mock's vLLM families sit beside them, and the gateway's own come first.
    expect(fams.map((f) => f.name)).toContain('vllm:num_requests_running');
    expect(text.indexOf('# TYPE gw_requests_total')).toBeLessThan(text.indexOf('llamacpp:'));
  });

  it('a backend error passes through untouched: a prompt longer than --ctx-size', async () => {
    const body = JSON.stringify({ model: CHAT_M, messages: [{ role: 'user', content: 'x'.repeat(CTX + 100) }], max_tokens: 4 });
    const viaGw = await post(`${gw.url}/v1/chat/completions`, body);
    const straight = await post(`${servers.chat.url}/v1/chat/completions`, body);
    expect(viaGw.status).toBe(straight.status);
    expect(viaGw.status).toBe(400);
    const [a, b] = [await viaGw.text(), await straight.text()];
    expect(a).toBe(b);
    expect(JSON.parse(a).error).toMatchObject({ type: 'exceed_context_size_error', n_ctx: CTX });
    expect(viaGw.headers.get('content-type')).toMatch(/^application\/json/);
    // And the SDK raises it as a BadRequestError with the server's message.
    await expect(client().chat.completions.create({ model: CHAT_M, messages: [{ role: 'user', content: 'x'.repeat(CTX + 100) }] }))
      .rejects.toMatchObject({ status: 400, message: expect.stringContaining('exceeds the available context size') });
  });

  it('2 MB request bodies reach the server whole, model key last', async () => {
    // A 2 MB prompt would take llama.cpp's tokenizer minutes with a byte-only vocabulary (its cost
    // grows faster than linearly), so the bulk sits where the server reads but does not tokenize.
    const small = { messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 };
    const padded = JSON.stringify({ ...small, metadata: { pad: 'p'.repeat(2 * 1024 * 1024) }, model: CHAT_M });
    const id = rid('2mb');
    const res = await post(`${gw.url}/v1/chat/completions`, padded, { 'x-request-id': id });
    expect(res.status).toBe(200);
    const out = await res.json();
    const ref = await (await post(`${servers.chat.url}/v1/chat/completions`, JSON.stringify(small))).json();
    // The server parsed the whole document (a cut body is a JSON error) and saw the same prompt.
    expect(out.usage.prompt_tokens).toBe(ref.usage.prompt_tokens);
    const l = await logLine(id);
    expect(l.request_length).toBeGreaterThan(padded.length);
    expect(l).toMatchObject({ status: 200, upstream_status: '200', prompt_tokens: out.usage.prompt_tokens });

    // The gateway's own use case: a vision request with a ~2 MB base64 page. This server has no
    // image encoder (no --mmproj): its refusal comes back byte for byte as it answers directly.
    const ocr = ocrBody(CHAT_M, 1_500_000, { modelLast: true });
    expect(ocr.length).toBeGreaterThan(2_000_000);
    const viaGw = await post(`${gw.url}/v1/chat/completions`, ocr);
    const straight = await post(`${servers.chat.url}/v1/chat/completions`, ocr);
    expect(viaGw.status).toBe(straight.status);
    expect(await viaGw.text()).toBe(await straight.text());
  });

  it('a client abort mid-stream: the server stops generating and the queue slot is freed', async () => {
    const before = sampleValue((await metricsOf(servers.chat.url)).fams, 'llamacpp:tokens_predicted_total', {}) ?? 0;
    const ac = new AbortController();
    const maxTokens = CTX - 200;
    const id = rid('abort');
    const stream = await client().chat.completions.create(
      // ignore_eos (a llama.cpp extension): random weights would otherwise stop at </s> now and then.
      { model: CHAT_M, messages: [{ role: 'user', content: 'go on' }], max_tokens: maxTokens, stream: true, ignore_eos: true } as OpenAI.ChatCompletionCreateParamsStreaming,
      { signal: ac.signal, headers: { 'x-request-id': id } });
    let got = 0;
    for await (const c of stream) {
      if (c.choices[0]?.delta?.content) got++;
      if (got === 3) {
        ac.abort();
        break;
      }
    }
    expect(got).toBe(3);
    // The slot comes back and the server is idle again, long before it could have produced maxTokens.
    await eventually(async () => {
      const q = (await (await admin('/admin/queue')).json()).models[CHAT_M];
      expect(q).toMatchObject({ inflight: 0, waiting: 0 });
      const m = (await metricsOf(servers.chat.url)).fams;
      expect(sampleValue(m, 'llamacpp:requests_processing', {})).toBe(0);
    }, { timeoutMs: 10_000 });
    const after = sampleValue((await metricsOf(servers.chat.url)).fams, 'llamacpp:tokens_predicted_total', {}) ?? 0;
    expect(after - before).toBeGreaterThanOrEqual(3);
    expect(after - before).toBeLessThan(maxTokens / 2);
    const l = await logLine(id);
    expect(l).toMatchObject({ client_abort: true, stream: true, model: CHAT_M });
    // The model still answers afterwards.
    const out = await client().chat.completions.create({ model: CHAT_M, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
    expect(out.usage!.completion_tokens).toBeGreaterThan(0);
  });

  it('active health checks: a server still loading its model (/health 503) is down; once loaded, up and routed', async () => {
    const late = servers.late;
    const direct503 = await fetch(`${late.url}/health`);
    expect(direct503.status).toBe(503);
    expect((await direct503.json()).error).toMatchObject({ message: 'Loading model', type: 'unavailable_error' });
    const upOf = async () => sampleValue((await metricsOf(gw.url)).fams, 'gw_backend_up', { upstream: 'be_late', server: `127.0.0.1:${ports.late}` });
    const lateServer = async () => (await (await fetch(`${gw.url}/readyz`)).json()).upstreams.be_late.servers[0];
    await eventually(async () => {
      expect(await upOf()).toBe(0);
      // Down because it answered 503, not because nothing listens.
      expect(await lateServer()).toMatchObject({ address: `127.0.0.1:${ports.late}`, status: 'down', error: 'HTTP 503' });
    });
    const md = await (await fetch(`${gw.url}/v1/metadata`)).json() as { models: { id: string; status: string }[] };
    expect(md.models.find((m) => m.id === LATE_M)!.status).toBe('down');
    const refused = await post(`${gw.url}/v1/chat/completions`, JSON.stringify({ model: LATE_M, messages: [{ role: 'user', content: 'hi' }] }));
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBeTruthy();
    expect((await refused.json()).error.code).toBe('model_unavailable');

    await releaseLate(late);
    await late.ready();
    await eventually(async () => {
      expect(await upOf()).toBe(1);
      expect(await lateServer()).toMatchObject({ status: 'up' });
    });
    const out = await client().chat.completions.create({ model: LATE_M, messages: [{ role: 'user', content: 'hi' }], max_tokens: 3 });
    expect(out.model).toBe(LATE_M);
  });

  /** Points the late server's model link at the real file, then lets its blocked open end (EOF). */
  async function releaseLate(late: LlamaServer): Promise<void> {
    const tmpLink = `${lateLink}.new`;
    symlinkSync(chatModel, tmpLink);
    renameSync(tmpLink, lateLink);
    for (;;) {
      if (late.exited()) throw new Error(`the late llama-server exited:\n${late.log()}`);
      try {
        // Non-blocking: ENXIO while nobody has the FIFO open for reading yet.
        closeSync(openSync(fifo, fsc.O_WRONLY | fsc.O_NONBLOCK));
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENXIO') throw e;
        if ((await fetch(`${late.url}/health`).then((r) => r.status, () => 0)) === 200) return;
        await sleep(50);
      }
    }
  }
});

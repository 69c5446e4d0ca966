/**
 * An OpenAI-compatible stand-in for a vLLM server, for tests, `npm start` and the benchmarks.
 * It answers like vLLM's OpenAI server (models, chat with and without SSE, completions,
 * embeddings, audio transcriptions, /health, /metrics) and reports what it received:
 *   x-mock-backend      the backend's name          x-body-sha256  hash of the request body it got
 *   x-body-bytes        length of that body          x-mock-model   the "model" it parsed
 * Test controls, per request header: x-mock-latency-ms, x-mock-status (answer with that status),
 * x-mock-chunks and x-mock-chunk-delay-ms (SSE shape), x-mock-hold: <name> (the request waits at the
 * backend, holding its slot, until the test calls openHold(name)).
 * maxConcurrency makes it queue like vLLM's scheduler (--max-num-seqs): at most N requests are
 * processed at once, the rest wait in FIFO order; stats.peakInflight records the most seen at once.
 */
import { createHash } from 'node:crypto';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';

export interface MockOptions {
  name: string;
  models: string[];
  host?: string;
  port?: number; // 0 or undefined: a free port
  latencyMs?: number;
  maxConcurrency?: number;
  maxModelLen?: number;
  /** Status /health answers with (tests flip it to simulate an unhealthy server). */
  healthStatus?: number;
  /** Answer every POST with this status (a replica that is up but failing, e.g. 503). */
  failStatus?: number;
  /**
   * Read and drop POST bodies without parsing or hashing them, and answer a fixed chat completion
   * for the first model (the bench's OCR cells: the gateway's own cost then shows, not the mock's
   * JSON.parse of a 2 MB body). No model check; the body's hash only when asked (x-mock-hash: 1).
   */
  skimBodies?: boolean;
  /**
   * Streamed answers' shape when the request does not set it (x-mock-chunks, x-mock-chunk-delay-ms):
   * content chunks per answer (default 3) and ms between them (default 0). With latencyMs this paces
   * a stream like a model server: latencyMs to the first token, then one token every chunkDelayMs.
   */
  chunks?: number;
  chunkDelayMs?: number;
}

export interface MockStats {
  requests: number;
  inflight: number;
  peakInflight: number;
  byPath: Record<string, number>;
  /** Headers of the most recent requests (newest last, at most 50). */
  recentHeaders: Record<string, string | string[] | undefined>[];
  aborted: number;
}

export interface MockVllm {
  name: string;
  url: string;
  port: number;
  host: string;
  stats: MockStats;
  options: MockOptions;
  resetStats(): void;
  /** Lets every request sent with `x-mock-hold: name` (before or after this call) answer. */
  openHold(name: string): void;
  close(): Promise<void>;
}

function sleep(ms: number): Promise<void> {
  return new Promise((res) => setTimeout(res, ms));
}

function json(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...extra });
  res.end(text);
}

function vllmError(res: ServerResponse, status: number, type: string, message: string, extra: Record<string, string> = {}): void {
  json(res, status, { error: { message, type, param: null, code: status } }, extra);
}

/** Deterministic token counts: ~4 bytes per prompt token, like a tokenizer on English text. */
function promptTokens(bytes: number): number {
  return Math.max(1, Math.ceil(bytes / 4));
}

/** The vector the mock returns for the i-th input (tests compare against it). */
export function mockEmbedding(i: number): number[] {
  return [0.1, 0.2, 0.3, 0.4].map((v) => v + i);
}

/**
 * vLLM's and OpenAI's `encoding_format`: "float" (the default) is a JSON array, "base64" the
 * little-endian float32 bytes in base64. The openai SDK asks for base64 unless told otherwise and
 * decodes it, so a mock that ignored it would hand SDK users garbage vectors.
 */
function encodeEmbedding(v: number[], format: unknown): number[] | string {
  if (format !== 'base64') return v;
  const buf = Buffer.alloc(v.length * 4);
  for (let i = 0; i < v.length; i++) buf.writeFloatLE(v[i], i * 4);
  return buf.toString('base64');
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function multipartField(body: Buffer, contentType: string, field: string): string | undefined {
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  if (!m) return undefined;
  const boundary = '--' + (m[1] ?? m[2]);
  const text = body.toString('latin1');
  for (const part of text.split(boundary)) {
    const head = part.indexOf('\r\n\r\n');
    if (head < 0) continue;
    if (new RegExp(`name="${field}"`).test(part.slice(0, head))) return part.slice(head + 4).replace(/\r\n$/, '');
  }
  return undefined;
}

export async function startMockVllm(options: MockOptions): Promise<MockVllm> {
  const host = options.host ?? '127.0.0.1';
  const stats: MockStats = { requests: 0, inflight: 0, peakInflight: 0, byPath: {}, recentHeaders: [], aborted: 0 };
  const waiters: (() => void)[] = [];
  let running = 0;
  const created = 1700000000;
  const holds: Record<string, { open: Promise<void>; release: () => void }> = {};
  function hold(name: string): { open: Promise<void>; release: () => void } {
    if (!holds[name]) {
      let release = () => {};
      const open = new Promise<void>((res) => { release = res; });
      holds[name] = { open, release };
    }
    return holds[name];
  }

  async function acquire(): Promise<void> {
    const cap = options.maxConcurrency;
    if (!cap) return;
    if (running < cap) {
      running++;
      return;
    }
    await new Promise<void>((res) => waiters.push(res));
  }
  function release(): void {
    if (!options.maxConcurrency) return;
    const next = waiters.shift();
    if (next) next();
    else running--;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    stats.requests++;
    stats.byPath[path] = (stats.byPath[path] ?? 0) + 1;
    stats.recentHeaders.push(req.headers);
    if (stats.recentHeaders.length > 50) stats.recentHeaders.shift();

    if (req.method === 'GET' && path === '/health') {
      res.writeHead(options.healthStatus ?? 200);
      res.end();
      return;
    }
    if (req.method === 'GET' && path === '/v1/models') {
      json(res, 200, {
        object: 'list',
        data: options.models.map((id) => ({ id, object: 'model', created, owned_by: 'vllm', root: id, parent: null, max_model_len: options.maxModelLen ?? 32768 })),
      });
      return;
    }
    if (req.method === 'GET' && path === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(options.models.map((m) =>
        `vllm:num_requests_running{model_name="${m}"} ${stats.inflight}\nvllm:num_requests_waiting{model_name="${m}"} ${waiters.length}\n`).join(''));
      return;
    }
    if (req.method !== 'POST') {
      vllmError(res, 404, 'NotFoundError', `No route for ${req.method} ${path}`);
      return;
    }

    if (options.skimBodies) {
      let bytes = 0;
      // A check (the bench's preflight) asks for the body's hash with x-mock-hash: 1; load does not.
      const h = req.headers['x-mock-hash'] === '1' ? createHash('sha256') : null;
      req.on('data', (c: Buffer) => { bytes += c.length; if (h) h.update(c); });
      await new Promise<void>((resolve, reject) => { req.on('end', resolve); req.on('error', reject); });
      // latencyMs holds the answer after the body is read: the bench's memory cell keeps N bodies
      // inside the proxy at once this way.
      if (options.latencyMs) {
        stats.inflight++;
        stats.peakInflight = Math.max(stats.peakInflight, stats.inflight);
        try {
          await sleep(options.latencyMs);
        } finally {
          stats.inflight--;
        }
      }
      const pt = promptTokens(bytes);
      json(res, 200, {
        id: 'chatcmpl-skim', object: 'chat.completion', created, model: options.models[0],
        choices: [{ index: 0, message: { role: 'assistant', content: 'skimmed' }, finish_reason: 'stop' }],
        usage: { prompt_tokens: pt, completion_tokens: 1, total_tokens: pt + 1 },
      }, { 'x-mock-backend': options.name, 'x-body-bytes': String(bytes), ...(h ? { 'x-body-sha256': h.digest('hex') } : {}) });
      return;
    }
    const body = await readBody(req);
    const hash = createHash('sha256').update(body).digest('hex');
    const ctype = String(req.headers['content-type'] ?? '');
    let parsed: Record<string, unknown> = {};
    let model: string | undefined;
    if (ctype.startsWith('multipart/form-data')) {
      model = multipartField(body, ctype, 'model');
    } else {
      try {
        parsed = JSON.parse(body.toString('utf8'));
        model = typeof parsed.model === 'string' ? parsed.model : undefined;
      } catch {
        vllmError(res, 400, 'BadRequestError', 'Invalid JSON body');
        return;
      }
    }
    const seen = { 'x-mock-backend': options.name, 'x-body-sha256': hash, 'x-body-bytes': String(body.length), 'x-mock-model': model ?? '' };
    const forced = options.failStatus ?? Number(req.headers['x-mock-status'] ?? 0);
    if (forced >= 400) {
      vllmError(res, forced, forced >= 500 ? 'InternalServerError' : 'BadRequestError', `forced status ${forced}`, seen);
      return;
    }
    if (!model || !options.models.includes(model)) {
      vllmError(res, 404, 'NotFoundError', `The model \`${model}\` does not exist.`, seen);
      return;
    }

    let closed = false;
    res.on('close', () => {
      if (!res.writableFinished) {
        closed = true;
        stats.aborted++;
      }
    });
    await acquire();
    stats.inflight++;
    stats.peakInflight = Math.max(stats.peakInflight, stats.inflight);
    try {
      const held = req.headers['x-mock-hold'];
      if (typeof held === 'string') await hold(held).open;
      const latency = Number(req.headers['x-mock-latency-ms'] ?? options.latencyMs ?? 0);
      const pt = promptTokens(body.length);
      if (path === '/v1/embeddings') {
        if (latency) await sleep(latency);
        const inputs = Array.isArray(parsed.input) ? parsed.input : [parsed.input];
        json(res, 200, {
          object: 'list', model, id: `embd-${hash.slice(0, 16)}`, created,
          data: inputs.map((_, i) => ({ object: 'embedding', index: i, embedding: encodeEmbedding(mockEmbedding(i), parsed.encoding_format) })),
          usage: { prompt_tokens: pt, total_tokens: pt, completion_tokens: 0 },
        }, seen);
        return;
      }
      if (path === '/v1/audio/transcriptions' || path === '/v1/audio/translations') {
        if (latency) await sleep(latency);
        json(res, 200, { text: `transcribed ${body.length} bytes` }, seen);
        return;
      }
      if (path !== '/v1/chat/completions' && path !== '/v1/completions') {
        vllmError(res, 404, 'NotFoundError', `No route for POST ${path}`, seen);
        return;
      }
      const chat = path === '/v1/chat/completions';
      const chunks = Number(req.headers['x-mock-chunks'] ?? options.chunks ?? 3);
      const words = Array.from({ length: chunks }, (_, i) => `tok${i} `);
      const id = `${chat ? 'chatcmpl' : 'cmpl'}-${hash.slice(0, 16)}`;
      const usage = { prompt_tokens: pt, completion_tokens: chunks, total_tokens: pt + chunks };
      if (parsed.stream === true) {
        const delay = Number(req.headers['x-mock-chunk-delay-ms'] ?? options.chunkDelayMs ?? 0);
        if (latency) await sleep(latency);
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', ...seen });
        const obj = chat ? 'chat.completion.chunk' : 'text_completion';
        const send = (o: unknown) => res.write(`data: ${JSON.stringify(o)}\n\n`);
        const includeUsage = (parsed.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true;
        if (chat) send({ id, object: obj, created, model, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] });
        for (let i = 0; i < words.length && !closed; i++) {
          if (delay && i > 0) await sleep(delay);
          send(chat
            ? { id, object: obj, created, model, choices: [{ index: 0, delta: { content: words[i] }, finish_reason: null }] }
            : { id, object: obj, created, model, choices: [{ index: 0, text: words[i], finish_reason: null }] });
        }
        if (closed) return;
        send(chat
          ? { id, object: obj, created, model, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }
          : { id, object: obj, created, model, choices: [{ index: 0, text: '', finish_reason: 'stop' }] });
        if (includeUsage) send({ id, object: obj, created, model, choices: [], usage });
        res.end('data: [DONE]\n\n');
        return;
      }
      if (latency) await sleep(latency);
      const text = words.join('');
      json(res, 200, chat
        ? { id, object: 'chat.completion', created, model, choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }], usage }
        : { id, object: 'text_completion', created, model, choices: [{ index: 0, text, finish_reason: 'stop' }], usage }, seen);
    } finally {
      stats.inflight--;
      release();
    }
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e) => {
      if (!res.headersSent) vllmError(res, 500, 'InternalServerError', String(e));
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 120_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    name: options.name,
    url: `http://${host}:${port}`,
    port,
    host,
    stats,
    options,
    resetStats() {
      stats.requests = 0; stats.peakInflight = stats.inflight; stats.byPath = {}; stats.recentHeaders = []; stats.aborted = 0;
    },
    openHold(name: string) {
      hold(name).release();
    },
    close() {
      return new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}

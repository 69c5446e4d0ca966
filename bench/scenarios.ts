/**
 * What the benchmarks run, as data: backends, models, payloads, the gateway's feature settings, and
 * the two profiles (`full` for `npm run bench`, `ci` for `npm run bench:ci`, < 3 minutes).
 * bench/run.ts reads only this file for its choices; change numbers here, not there.
 */
import { CHAT, chatBody, EMBED, OCR, ocrBody } from '../tools/clients';
import type { MockOptions } from '../tools/mockVllm';
import type { ModelSpec } from '../tools/stack';
import type { InstructionsProfile } from './instructions';
import type { LlamaProfile } from './llama';

export type TargetId = 'direct' | 'plain' | 'gateway';
export const TARGETS: TargetId[] = ['direct', 'plain', 'gateway'];

/** A model served by a backend that runs at most OVERLOAD.capacity requests at once (vLLM --max-num-seqs). */
export const OCR_CAPPED = 'bench/ocr-capped';
/** The OCR model on a backend that skims bodies (reads and drops them, no JSON.parse). */
export const OCR_SKIM = 'bench/ocr-skim';
/** A chat model whose backend streams at a model server's pace (PACED below). */
export const CHAT_PACED = 'bench/chat-paced';
/** The OCR model on a skimming backend that holds each answer (the memory cell: MEMORY below). */
export const OCR_HOLD = 'bench/ocr-hold';

/**
 * The realistic-latency cell (full profile): a backend that streams like a model server (PACED.ttftMs
 * to the first token, then PACED.tokens tokens PACED.tokenMs apart, SSE with include_usage), many
 * streams at once; the gateway's price is then a share of a long request, as in production, and the
 * issue's goal is gateway ÷ plain req/s >= 0.98 and added p99 <= 1 ms.
 */
export const PACED = { ttftMs: 50, tokens: 20, tokenMs: 10, connections: 256 };

/**
 * The memory cell (full profile): `connections` 2 MB OCR bodies inside nginx at once (the backend
 * reads each body, then holds the answer holdMs), worker RSS sampled during the load vs at idle.
 */
export const MEMORY = { imageKb: 2048, connections: 32, holdMs: 1000 };

/**
 * Mock vLLM backends by upstream name (bench/mockProcess.ts runs them in a process of their own).
 * Those in ON_DEMAND run only for the stages and cells that use them.
 */
export const BACKENDS: Record<string, Omit<MockOptions, 'name' | 'models'>> = {
  be_chat: { latencyMs: 0 },
  be_embed: { latencyMs: 0 },
  be_ocr: { latencyMs: 0 },
  // Reads and drops bodies: on large OCR bodies the mock's own JSON.parse (~22 ms of CPU per 2 MB
  // on the same cores) would hide the gateway's cost; be_ocr keeps the realistic, parsing cell.
  be_ocr_skim: { latencyMs: 0, skimBodies: true },
  // A model server's pace: first token after PACED.ttftMs, then one every PACED.tokenMs.
  be_chat_paced: { latencyMs: PACED.ttftMs, chunks: PACED.tokens, chunkDelayMs: PACED.tokenMs },
  // Skims bodies and answers MEMORY.holdMs later: each request's body stays in nginx that long.
  be_ocr_hold: { latencyMs: MEMORY.holdMs, skimBodies: true },
  // Overload scenario: 4 requests at once, 100 ms each → capacity 40 req/s.
  be_ocr_capped: { latencyMs: 100, maxConcurrency: 4 },
};

/**
 * Backends started only where a cell uses them (bench/targets.ts startBenchMocks): each upstream the
 * gateway knows adds health checks to its background work, which the instructions stage's callgrind
 * window counts with the requests, so the backends every run has stay the ones it always had.
 */
export const ON_DEMAND = ['be_chat_paced', 'be_ocr_hold'];

/** The routing table (gateway.json's "models"), before the gateway features below are merged in; a gateway routes the models of the backends that run. */
export const MODELS: Record<string, ModelSpec> = {
  [CHAT]: { upstream: 'be_chat', capabilities: ['chat', 'completions'] },
  [EMBED]: { upstream: 'be_embed', capabilities: ['embeddings'] },
  [OCR]: { upstream: 'be_ocr', capabilities: ['chat', 'completions', 'vision'] },
  [OCR_CAPPED]: { upstream: 'be_ocr_capped', capabilities: ['chat', 'completions', 'vision'] },
  [OCR_SKIM]: { upstream: 'be_ocr_skim', capabilities: ['chat', 'completions', 'vision'] },
  [CHAT_PACED]: { upstream: 'be_chat_paced', capabilities: ['chat', 'completions'] },
  [OCR_HOLD]: { upstream: 'be_ocr_hold', capabilities: ['chat', 'completions', 'vision'] },
};

/**
 * The gateway target runs with every feature that exists switched on; when a feature lands, switch
 * it on here and the next run measures it.
 *   auth     API keys on (startStack `auth: true`); one key made through the admin API at start,
 *            with rate limits high enough to be counted on every request but never hit.
 *   routing  always on (njs/src/handlers/route.ts).
 *   queue    per-model caps, as data in the routing config: generous on the throughput models so
 *            the queue admits every request through its slot accounting but never makes one wait;
 *            tight on OCR_CAPPED, where the overload scenario shows what it is for.
 *   logging, usage, metrics   on in nginx/nginx.conf.example (gw_json access log, js_body_filter
 *            usage extraction, log-phase ledger and metrics counters): nothing to switch.
 */
export interface GatewayFeatures {
  /** Merged into MODELS[model] for the gateway's routing config. */
  models: Record<string, Partial<ModelSpec>>;
  /** An API key record to create through the admin API; requests then carry it as a Bearer key. */
  key: Record<string, unknown> | null;
  /** Headers every request to the gateway carries (besides the key). */
  headers: Record<string, string>;
  /** Extra startStack options, passed through (for features configured there). */
  stack: Record<string, unknown>;
  /** What is on, for the report. */
  on: string[];
}

export const GATEWAY_FEATURES: GatewayFeatures = {
  models: {
    [CHAT]: { max_inflight: 512, max_queue: 1024, queue_timeout: '30s' },
    [EMBED]: { max_inflight: 512, max_queue: 1024, queue_timeout: '30s' },
    [OCR]: { max_inflight: 64, max_queue: 256, queue_timeout: '60s' },
    [OCR_SKIM]: { max_inflight: 64, max_queue: 256, queue_timeout: '60s' },
    // Every stream of the realistic cell goes through at once: the queue counts, never waits.
    [CHAT_PACED]: { max_inflight: 512, max_queue: 1024, queue_timeout: '30s' },
    [OCR_HOLD]: { max_inflight: 64, max_queue: 256, queue_timeout: '60s' },
    [OCR_CAPPED]: { max_inflight: 4, max_queue: 8, queue_timeout: '30s' },
  },
  key: { id: 'bench', label: 'load test', models: '*', rpm: 1000000, burst: 100000, tier: 'normal' },
  headers: {},
  stack: { auth: true },
  on: ['API keys + per-key rate limit', 'routing', 'per-model queue', 'JSON access log', 'usage body filter + ledger', 'metrics'],
};

/**
 * Gateway variants for the feature-cost stage (full profile): each switches features of
 * GATEWAY_FEATURES off, measured in the same run as plain nginx and the all-on gateway.
 */
export interface GatewayVariant {
  id: string;
  label: string;
  auth: boolean;
  queue: boolean;
  /** JSON access log, usage body filter, log-phase ledger and metrics (LOGS_OFF switches them off). */
  logs: boolean;
  /** Clients present a signed token of this alg instead of the API key (docs/jwt.md); RS256 keys come from a JWKS file. */
  jwt?: 'HS256' | 'RS256';
}

export const FEATURE_VARIANTS: GatewayVariant[] = [
  { id: 'all', label: 'every feature on', auth: true, queue: true, logs: true },
  { id: 'no-auth', label: 'API keys off', auth: false, queue: true, logs: true },
  { id: 'jwt-hs256', label: 'HS256 token instead of the API key', auth: true, queue: true, logs: true, jwt: 'HS256' },
  { id: 'jwt-rs256', label: 'RS256 token (JWKS) instead of the API key', auth: true, queue: true, logs: true, jwt: 'RS256' },
  { id: 'no-queue', label: 'queue off (no max_inflight)', auth: true, queue: false, logs: true },
  { id: 'no-logs', label: 'log, usage and metrics hooks off', auth: true, queue: true, logs: false },
  { id: 'routing-only', label: 'routing only (all of the above off)', auth: false, queue: false, logs: false },
];

/** Edits that switch the log-phase and body-filter hooks off (a variant's config only). */
export const LOGS_OFF = {
  conf: (c: string) => c.replace(/^\s*access_log [^\n]*gw_null[^\n]*\n/m, '').replace(/access_log [^;\n]*gw_json;/, 'access_log off;'),
  includes: { 'gateway-server.conf': (c: string) => c.replace(/^\s*js_body_filter gw\.usage[^\n]*\n/gm, '') },
};

export type PayloadId = 'chat' | 'chat-stream' | 'chat-paced' | 'embeddings' | 'ocr-250k' | 'ocr-2m' | 'ocr-250k-skim' | 'ocr-2m-skim' | 'ocr-2m-hold';

export interface Payload {
  id: PayloadId;
  label: string;
  path: string;
  model: string;
  /** Upstream (= mock) that serves it; the direct and plain targets go straight there. */
  upstream: string;
  body: () => string;
  /** OCR pages per request (for pages/s); 0 when not OCR. */
  pages: number;
  /** Sample the backend's count of open requests during the load (a cell that claims many streams at once shows it held them). */
  countAtBackend?: boolean;
}

/** Raw image bytes whose base64 is `kb` KiB long (base64 is 4/3 of the raw size). */
function rawForBase64(kb: number): number {
  return Math.round((kb * 1024 * 3) / 4);
}

export const PAYLOADS: Record<PayloadId, Payload> = {
  chat: { id: 'chat', label: 'small chat', path: '/v1/chat/completions', model: CHAT, upstream: 'be_chat', pages: 0,
    body: () => chatBody(CHAT, { max_tokens: 16 }) },
  'chat-stream': { id: 'chat-stream', label: 'streamed chat (SSE)', path: '/v1/chat/completions', model: CHAT, upstream: 'be_chat', pages: 0,
    body: () => chatBody(CHAT, { max_tokens: 16, stream: true, stream_options: { include_usage: true } }) },
  'chat-paced': { id: 'chat-paced', label: `streamed chat at a model server's pace (${PACED.ttftMs} ms to the first token, ${PACED.tokens} tokens ${PACED.tokenMs} ms apart)`,
    path: '/v1/chat/completions', model: CHAT_PACED, upstream: 'be_chat_paced', pages: 0, countAtBackend: true,
    body: () => chatBody(CHAT_PACED, { max_tokens: PACED.tokens, stream: true, stream_options: { include_usage: true } }) },
  embeddings: { id: 'embeddings', label: 'embeddings', path: '/v1/embeddings', model: EMBED, upstream: 'be_embed', pages: 0,
    body: () => JSON.stringify({ model: EMBED, input: ['The quick brown fox jumps over the lazy dog.', 'An nginx-native AI gateway.'] }) },
  // OpenAI SDKs put "messages" before "model" (keyword order), so "model last" is the realistic case.
  'ocr-250k': { id: 'ocr-250k', label: 'OCR, 250 KB image', path: '/v1/chat/completions', model: OCR, upstream: 'be_ocr', pages: 1,
    body: () => ocrBody(OCR, rawForBase64(250), { modelLast: true }) },
  'ocr-2m': { id: 'ocr-2m', label: 'OCR, 2 MB image', path: '/v1/chat/completions', model: OCR, upstream: 'be_ocr', pages: 1,
    body: () => ocrBody(OCR, rawForBase64(2048), { modelLast: true }) },
  // The same bodies to the skimming backend: worker CPU per request shows the gateway's own cost.
  'ocr-250k-skim': { id: 'ocr-250k-skim', label: 'OCR, 250 KB image, skimming backend', path: '/v1/chat/completions', model: OCR_SKIM,
    upstream: 'be_ocr_skim', pages: 1, body: () => ocrBody(OCR_SKIM, rawForBase64(250), { modelLast: true }) },
  'ocr-2m-skim': { id: 'ocr-2m-skim', label: 'OCR, 2 MB image, skimming backend', path: '/v1/chat/completions', model: OCR_SKIM,
    upstream: 'be_ocr_skim', pages: 1, body: () => ocrBody(OCR_SKIM, rawForBase64(2048), { modelLast: true }) },
  'ocr-2m-hold': { id: 'ocr-2m-hold', label: `OCR, 2 MB image, backend holding each answer ${MEMORY.holdMs} ms`, path: '/v1/chat/completions', model: OCR_HOLD,
    upstream: 'be_ocr_hold', pages: 1, body: () => ocrBody(OCR_HOLD, rawForBase64(MEMORY.imageKb), { modelLast: true }) },
};

export interface Cell {
  payload: PayloadId;
  connections: number[];
}

export interface Profile {
  name: 'full' | 'ci';
  /** Seconds per measurement, and of the warm-up before a target's first measurement of a cell. */
  duration: number;
  warmup: number;
  /** Every cell is measured this many times per target, targets interleaved; medians are reported. */
  rounds: number;
  cells: Cell[];
  overload: { duration: number };
  /** Cells of the feature-cost stage (FEATURE_VARIANTS); empty: skipped. */
  features: Cell[];
  extract: ExtractProfile;
  /** Instructions per request under callgrind (bench/instructions.ts). */
  instructions: InstructionsProfile;
  real: { duration: number; connections: number[] };
  /** Worker RSS with MEMORY.connections large bodies inside nginx at once (bench/memory.ts); null: skipped. */
  memory: { duration: number } | null;
  /** llama.cpp's llama-server directly vs through the gateway (bench/llama.ts); null: skipped. */
  llama: LlamaProfile | null;
}

export interface ExtractProfile {
  /** Rounds of the in-VM loop (one request per body per round); the median is reported. */
  rounds: number;
  /** Rounds and seconds of each autocannon run against the js_content handlers. */
  e2eRounds: number;
  e2eDuration: number;
}

export const PROFILES: Record<'full' | 'ci', Profile> = {
  full: {
    name: 'full', duration: 3, warmup: 0.5, rounds: 3,
    cells: [
      { payload: 'chat', connections: [1, 4, 16, 64] },
      { payload: 'chat-stream', connections: [8, 32] },
      { payload: 'embeddings', connections: [8, 32] },
      { payload: 'ocr-250k', connections: [1, 4, 8] },
      { payload: 'ocr-2m', connections: [1, 2, 4] },
      { payload: 'ocr-250k-skim', connections: [4] },
      { payload: 'ocr-2m-skim', connections: [2] },
      // The realistic-latency cell (PACED): 256 streams held open for the whole run.
      { payload: 'chat-paced', connections: [PACED.connections] },
    ],
    overload: { duration: 10 },
    features: [{ payload: 'chat', connections: [16] }, { payload: 'ocr-2m', connections: [2] }],
    extract: { rounds: 5, e2eRounds: 3, e2eDuration: 2 },
    instructions: { variants: ['all', 'no-auth', 'jwt-hs256', 'jwt-rs256', 'no-queue', 'no-logs', 'routing-only'],
      cells: [{ payload: 'chat', requests: 1000 }, { payload: 'ocr-2m', requests: 20 }], floor: true },
    real: { duration: 30, connections: [1, 4, 8] },
    memory: { duration: 3 },
    llama: { duration: 4, rounds: 2, connections: [1, 8], maxTokens: 64 },
  },
  ci: {
    name: 'ci', duration: 1.5, warmup: 0.3, rounds: 2,
    cells: [
      { payload: 'chat', connections: [1, 16] },
      { payload: 'chat-stream', connections: [16] },
      { payload: 'embeddings', connections: [16] },
      { payload: 'ocr-250k', connections: [4] },
      { payload: 'ocr-2m', connections: [2] },
      { payload: 'ocr-250k-skim', connections: [4] },
      { payload: 'ocr-2m-skim', connections: [2] },
    ],
    overload: { duration: 4 },
    features: [],
    extract: { rounds: 3, e2eRounds: 2, e2eDuration: 1 },
    instructions: { variants: ['all', 'no-auth', 'no-queue', 'no-logs', 'routing-only'], cells: [{ payload: 'chat', requests: 400 }], floor: true },
    real: { duration: 10, connections: [4] },
    memory: null,
    llama: null,
  },
};

/**
 * Overload: OCR (250 KB) offered at 4x what be_ocr_capped can do, open loop (autocannon overallRate),
 * through the gateway (queue caps from GATEWAY_FEATURES) and through plain nginx.
 */
export const OVERLOAD = {
  model: OCR_CAPPED,
  upstream: 'be_ocr_capped',
  /** Backend capacity in req/s: maxConcurrency / latency. */
  capacity: 4 / 0.1,
  factor: 4,
  /** Enough connections that the offered rate is not capped by waiting clients. */
  connections: 80,
  imageKb: 250,
  /** Statuses the gateway may answer under overload besides 200 (queue full / timed out). */
  allowedStatuses: [429, 503],
  /** Closed-loop clients that honor Retry-After like the OpenAI SDKs: 4x the backend's 4 slots. */
  politeClients: 16,
};

/** Model-extraction micro-benchmark (issue 2): bodies, iterations per request, load per body. */
export const EXTRACT_BODIES = [
  { id: '1KB', imageBytes: 600, scanIters: 20000, parseIters: 5000, connections: 8 },
  { id: '1MB', imageBytes: 768 * 1024, scanIters: 300, parseIters: 20, connections: 8 },
  { id: '20MB', imageBytes: 15 * 1024 * 1024, scanIters: 10, parseIters: 3, connections: 2 },
];

/** The targets, as ratios within one run (reported, never a CI failure). */
export const GOALS = {
  chatThroughputRatio: 0.85,
  ocr2mThroughputRatio: 0.95,
  chatAddedP50Ms: 0.3,
  /** The realistic-latency cell (PACED), issue 20. */
  pacedThroughputRatio: 0.98,
  pacedAddedP99Ms: 1,
};

/** Regression check against bench/baseline.json: warn when a ratio moved more than this (fraction). */
export const REGRESSION_TOLERANCE = 0.35;

/** Instructions per request are exact for a build (callgrind): warn at 5% more. */
export const INSTRUCTIONS_TOLERANCE = 0.05;

/** Real target (a GPU deployment), from the environment; the OCR scenario runs against it. */
export function realTarget(): { url: string; key?: string; model: string; imageKb: number } | null {
  const url = process.env.GW_BENCH_URL;
  if (!url) return null;
  return {
    url: url.replace(/\/+$/, ''),
    key: process.env.GW_BENCH_KEY || undefined,
    model: process.env.GW_BENCH_MODEL || OCR,
    imageKb: Number(process.env.GW_BENCH_IMAGE_KB || 250),
  };
}

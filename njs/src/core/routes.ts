/**
 * The routing table: public model names and aliases → the nginx upstream that serves them, plus
 * each model's limits and capabilities. The table is data generated from nginx/gateway.json by
 * scripts/gen-config.mjs into dist/routes/gw-routes.js (see docs/configuration.md).
 */

export type Capability = 'chat' | 'completions' | 'embeddings' | 'vision' | 'audio' | 'rerank';
/**
 * Every capability a model may declare. Also listed, for their own readers, by scripts/gen-config.mjs
 * (validation), nginx/metadata-schema.json and core/metadata.ts CAPABILITY_ENDPOINTS; a unit test
 * (test/unit/concepts.test.ts) keeps all of them equal to this one.
 */
export const CAPABILITIES: Capability[] = ['chat', 'completions', 'embeddings', 'vision', 'audio', 'rerank'];

export interface ModelRoute {
  upstream: string;
  capabilities: Capability[];
  /** Concurrency cap per model across all workers; 0 = no cap. */
  max_inflight: number;
  /** Requests allowed to wait for a slot; 0 = reject at once when full. */
  max_queue: number;
  queue_timeout_ms: number;
  /** How long a slot may be held before the sweeper reclaims it (a request that vanished). */
  slot_lease_ms: number;
  owned_by: string;
  created: number;
}

export interface UpstreamInfo {
  /** Literal host:port of every server, for health probes and /v1/models fetches. */
  servers: string[];
  /** Environment variable holding the backend's own API key (vLLM --api-key), "" for none. */
  api_key_env: string;
}

export interface RouteTable {
  models: { [name: string]: ModelRoute };
  /** alias → canonical model name (the name the backend serves). */
  aliases: { [alias: string]: string };
  upstreams: { [name: string]: UpstreamInfo };
}

export type Resolved = { ok: true; model: string; route: ModelRoute; alias: boolean } | { ok: false };

/**
 * An own route of the table: what any object inherits is a function or the prototype itself, never
 * an object with a string `upstream`, so "constructor" or "__proto__" cannot resolve, and no
 * Object.prototype.hasOwnProperty is needed (njs builds Object anew in each request's VM the first
 * time code touches it).
 */
function isRoute(r: unknown): boolean {
  return typeof r === 'object' && r !== null && typeof (r as ModelRoute).upstream === 'string';
}

export function canonicalModel(t: RouteTable, name: string): string {
  const models = t.models;
  // isRoute, written out for the common case (every request asks): a model's own name.
  const m = models[name];
  if (typeof m === 'object' && m !== null && typeof m.upstream === 'string') return name;
  // Likewise an alias is a string, which nothing inherited is.
  const canonical = t.aliases[name];
  if (typeof canonical === 'string' && isRoute(models[canonical])) return canonical;
  return '';
}

export function resolveModel(t: RouteTable, name: string): Resolved {
  const model = canonicalModel(t, name);
  if (model === '') return { ok: false };
  // canonicalModel answers a model's own name first, so a different name means an alias.
  return { ok: true, model: model, route: t.models[model], alias: model !== name };
}

/** The aliases of each canonical model name (the inverse of `t.aliases`), in table order. */
export function aliasesByModel(t: RouteTable): { [model: string]: string[] } {
  const out: { [model: string]: string[] } = Object.create(null);
  const names = Object.keys(t.aliases);
  for (let i = 0; i < names.length; i++) {
    const target = t.aliases[names[i]];
    (out[target] || (out[target] = [])).push(names[i]);
  }
  return out;
}

/**
 * The Authorization value for the gateway's requests to an upstream: "Bearer <its own key>" when
 * gateway.json names an api_key_env that is set (nginx's `env` directive passes it to njs), else "".
 */
export function upstreamBearer(t: RouteTable, upstream: string, env: { [name: string]: string | undefined }): string {
  // Inherited members are functions or the prototype, neither has a string api_key_env.
  const u = t.upstreams[upstream];
  const name = typeof u === 'object' && u !== null && typeof u.api_key_env === 'string' ? u.api_key_env : '';
  const key = name !== '' ? env[name] : undefined;
  return typeof key === 'string' && key !== '' ? 'Bearer ' + key : '';
}

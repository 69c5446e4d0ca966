/**
 * Model discovery, as data: what each upstream's `GET /v1/models` said (a Listing), and the one
 * OpenAI model list the gateway answers with, built from the routing table and those listings.
 *
 * Policy (docs/observability.md#discovery-health-and-metrics):
 * - A model is listed when its upstream's latest good listing names it. A configured model whose
 *   upstream never answered is missing (the list is "partial"); one whose upstream fails now but
 *   answered before is listed from that older answer (the list is "stale").
 * - Names a backend serves but the routing table does not route are not listed (the gateway would
 *   answer 404 for them); /v1/metadata shows them as `unrouted`.
 * - Each alias of a listed model is listed too, with the model's `created` and `owned_by`.
 * - Entries have OpenAI's exact shape {id, object:"model", created, owned_by}.
 */
import { allModelsAllowed, modelAllowed } from './access';
import { aliasesByModel, RouteTable } from './routes';

export interface BackendModel {
  id: string;
  created: number;
  owned_by: string;
  max_model_len?: number;
}

export interface Listing {
  /** ms: last attempt to fetch the upstream's /v1/models. */
  attempted_at: number;
  /** ms: last successful fetch; 0 = never. */
  fetched_at: number;
  /** Whether the last attempt succeeded. */
  ok: boolean;
  /** Why the last attempt failed ("" when it succeeded). */
  error: string;
  /** Models from the last successful fetch. */
  models: BackendModel[];
}

export interface ModelEntry {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
}

/** Listings fetched at most this long ago are fresh; the refresher refetches older ones. */
export const MODELS_TTL_MS = 10000;

/**
 * When no refresher has attempted an upstream for this long (js_periodic not running), a request
 * for the list fetches it itself.
 */
export const MODELS_ON_DEMAND_MS = 3 * MODELS_TTL_MS;

export type ParsedModels = { ok: true; models: BackendModel[] } | { ok: false; error: string };

/** Validates a backend's /v1/models answer ({object:"list", data:[{id,...}]}, vLLM, llama.cpp or OpenAI). */
export function parseBackendModels(body: unknown): ParsedModels {
  if (body === null || typeof body !== 'object') return { ok: false, error: 'not a JSON object' };
  const data = (body as { data?: unknown }).data;
  if (!Array.isArray(data)) return { ok: false, error: 'no "data" list' };
  const models: BackendModel[] = [];
  for (let i = 0; i < data.length; i++) {
    const d = data[i] as { id?: unknown; created?: unknown; owned_by?: unknown; max_model_len?: unknown; meta?: { n_ctx?: unknown } | null } | null;
    if (d === null || typeof d !== 'object' || typeof d.id !== 'string' || d.id === '') continue;
    const m: BackendModel = {
      id: d.id,
      created: typeof d.created === 'number' && d.created >= 0 ? Math.floor(d.created) : 0,
      owned_by: typeof d.owned_by === 'string' ? d.owned_by : 'vllm',
    };
    if (typeof d.max_model_len === 'number') m.max_model_len = d.max_model_len;
    // llama.cpp's llama-server names its context per slot meta.n_ctx: the longest request it takes.
    else if (d.meta !== null && typeof d.meta === 'object' && typeof d.meta.n_ctx === 'number' && d.meta.n_ctx > 0) m.max_model_len = d.meta.n_ctx;
    models.push(m);
  }
  return { ok: true, models: models };
}

/** One server's answer: the parsed models, or the error text. */
export type ServerAnswer = ParsedModels;

/**
 * The new listing of an upstream after one round of fetches from its servers (replicas serve the
 * same models, so the union of the servers that answered is taken). When none answered, the
 * previous models are kept and the listing is marked failed.
 */
export function nextListing(prev: Listing | null, answers: ServerAnswer[], now: number): Listing {
  const seen: { [id: string]: boolean } = Object.create(null);
  const models: BackendModel[] = [];
  const errors: string[] = [];
  let ok = false;
  for (let i = 0; i < answers.length; i++) {
    const a = answers[i];
    if (!a.ok) {
      errors.push(a.error);
      continue;
    }
    ok = true;
    for (let j = 0; j < a.models.length; j++) {
      if (seen[a.models[j].id]) continue;
      seen[a.models[j].id] = true;
      models.push(a.models[j]);
    }
  }
  if (ok) return { attempted_at: now, fetched_at: now, ok: true, error: '', models: models };
  return {
    attempted_at: now,
    fetched_at: prev !== null ? prev.fetched_at : 0,
    ok: false,
    error: errors.length > 0 ? errors.join('; ') : 'no servers',
    models: prev !== null ? prev.models : [],
  };
}

/** Reads a stored listing; null when absent or not a listing (a zone written by another version). */
export function decodeListing(text: string | undefined): Listing | null {
  if (text === undefined) return null;
  try {
    const l = JSON.parse(text) as Listing;
    return l !== null && typeof l === 'object' && Array.isArray(l.models) && typeof l.attempted_at === 'number' ? l : null;
  } catch (e) {
    return null;
  }
}

export type ListingState = 'fresh' | 'stale' | 'missing';

/** fresh: the last attempt succeeded; stale: it failed but older models are known; missing: none. */
export function listingState(l: Listing | null): ListingState {
  if (l === null || l.fetched_at === 0) return 'missing';
  return l.ok ? 'fresh' : 'stale';
}

/** Whether the refresher should fetch this upstream again now. */
export function needsRefresh(l: Listing | null, now: number): boolean {
  return l === null || !l.ok || now - l.attempted_at >= MODELS_TTL_MS;
}

export interface Assembled {
  /** Every listed model and alias, unfiltered, in routing-table order (aliases after their model). */
  data: ModelEntry[];
  /** Canonical model name of each entry id (an alias maps to its model). */
  canonical: { [id: string]: string };
  /** Configured models not listed, because their upstream never answered or does not serve them. */
  unlisted: string[];
  /** Names upstreams serve that the routing table does not route. */
  unrouted: { id: string; upstream: string }[];
}

export function assembleModels(t: RouteTable, listings: { [upstream: string]: Listing | null }): Assembled {
  const aliasesOf = aliasesByModel(t);
  const served: { [upstream: string]: { [id: string]: BackendModel } } = Object.create(null);
  const ups = Object.keys(t.upstreams);
  const out: Assembled = { data: [], canonical: Object.create(null), unlisted: [], unrouted: [] };
  for (let i = 0; i < ups.length; i++) {
    const l = listings[ups[i]];
    const byId: { [id: string]: BackendModel } = Object.create(null);
    if (l !== null && l !== undefined) {
      for (let j = 0; j < l.models.length; j++) {
        const m = l.models[j];
        byId[m.id] = m;
        const r = Object.prototype.hasOwnProperty.call(t.models, m.id) ? t.models[m.id] : undefined;
        if (r === undefined || r.upstream !== ups[i]) out.unrouted.push({ id: m.id, upstream: ups[i] });
      }
    }
    served[ups[i]] = byId;
  }
  const names = Object.keys(t.models);
  for (let i = 0; i < names.length; i++) {
    const name = names[i];
    const route = t.models[name];
    const bm = served[route.upstream] !== undefined ? served[route.upstream][name] : undefined;
    if (bm === undefined) {
      out.unlisted.push(name);
      continue;
    }
    const created = bm.created > 0 ? bm.created : route.created;
    const owner = bm.owned_by !== '' ? bm.owned_by : route.owned_by;
    out.data.push({ id: name, object: 'model', created: created, owned_by: owner });
    out.canonical[name] = name;
    const al = aliasesOf[name] || [];
    for (let j = 0; j < al.length; j++) {
      out.data.push({ id: al[j], object: 'model', created: created, owned_by: owner });
      out.canonical[al[j]] = name;
    }
  }
  return out;
}

/** The entries the key may use; `spec` is $gw_key_models ("" = auth off = everything). */
export function filterModels(data: ModelEntry[], canonical: { [id: string]: string }, spec: string): ModelEntry[] {
  if (allModelsAllowed(spec)) return data;
  const out: ModelEntry[] = [];
  for (let i = 0; i < data.length; i++) {
    if (modelAllowed(spec, canonical[data[i].id], data[i].id)) out.push(data[i]);
  }
  return out;
}

export function listBody(data: ModelEntry[]): string {
  return JSON.stringify({ object: 'list', data: data });
}

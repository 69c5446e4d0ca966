/**
 * GET /v1/metadata: service discovery for clients and operators, as one JSON document whose schema
 * is nginx/metadata-schema.json (an integration test validates real answers against it).
 * It reveals no backend address and no backend error text: those are for /readyz and the error log.
 * Models are filtered by the caller's key like /v1/models.
 */
import { allModelsAllowed, modelAllowed } from './access';
import { Assembled, Listing, listingState, ListingState, MODELS_TTL_MS } from './discovery';
import { HealthView, Status } from './health';
import { aliasesByModel, CAPABILITIES, Capability, RouteTable } from './routes';
import { GATEWAY_NAME, GATEWAY_VERSION } from './version';

/** client_max_body_size of `location /v1/` in nginx/gateway-server.conf (a unit test compares). */
export const MAX_BODY_BYTES = 64 * 1024 * 1024;

/** The POST endpoints that serve each capability (all under `location /v1/`). */
export const CAPABILITY_ENDPOINTS: { [c in Capability]: string[] } = {
  chat: ['/v1/chat/completions'],
  completions: ['/v1/completions'],
  embeddings: ['/v1/embeddings'],
  vision: ['/v1/chat/completions'],
  audio: ['/v1/audio/transcriptions', '/v1/audio/translations'],
  rerank: ['/v1/rerank', '/v1/score'],
};

export interface MetadataInput {
  table: RouteTable;
  listings: { [upstream: string]: Listing | null };
  assembled: Assembled;
  health: HealthView;
  /** $gw_key_models: "" (auth off), "*" or a JSON array. */
  keySpec: string;
  now: number;
  nginxVersion: string;
  njsVersion: string;
}

function endpointsOf(caps: Capability[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < caps.length; i++) {
    const e = CAPABILITY_ENDPOINTS[caps[i]] || [];
    for (let j = 0; j < e.length; j++) if (out.indexOf(e[j]) < 0) out.push(e[j]);
  }
  return out;
}

function seconds(ms: number): number | null {
  return ms > 0 ? Math.floor(ms / 1000) : null;
}

/** The gateway's endpoints: each capability's POST paths (merged per path), then its own GETs. */
function endpointList(): { path: string; methods: string[]; capabilities: string[] }[] {
  const endpoints: { path: string; methods: string[]; capabilities: string[] }[] = [];
  for (let i = 0; i < CAPABILITIES.length; i++) {
    const paths = CAPABILITY_ENDPOINTS[CAPABILITIES[i]];
    for (let j = 0; j < paths.length; j++) {
      let e = null;
      for (let k = 0; k < endpoints.length; k++) if (endpoints[k].path === paths[j]) e = endpoints[k];
      if (e === null) endpoints.push(e = { path: paths[j], methods: ['POST'], capabilities: [] });
      e.capabilities.push(CAPABILITIES[i]);
    }
  }
  const gets = ['/v1/models', '/v1/models/{model}', '/v1/metadata', '/health', '/readyz', '/metrics'];
  for (let i = 0; i < gets.length; i++) endpoints.push({ path: gets[i], methods: ['GET'], capabilities: [] });
  return endpoints;
}

function maxModelLen(l: Listing | null, name: string): number | null {
  if (l === null) return null;
  for (let j = 0; j < l.models.length; j++) if (l.models[j].id === name && l.models[j].max_model_len !== undefined) return l.models[j].max_model_len as number;
  return null;
}

/** The models the key may see (by name or by one of their aliases), and whether any listing is stale or missing. */
function modelList(m: MetadataInput): { models: unknown[]; stale: boolean; partial: boolean } {
  const t = m.table;
  const aliasesOf = aliasesByModel(t);
  const listed: { [name: string]: boolean } = Object.create(null);
  for (let i = 0; i < m.assembled.data.length; i++) listed[m.assembled.data[i].id] = true;
  const out = { models: [] as unknown[], stale: false, partial: false };
  const names = Object.keys(t.models);
  for (let i = 0; i < names.length; i++) {
    const name = names[i];
    const r = t.models[name];
    const allAliases = aliasesOf[name] || [];
    const aliases: string[] = [];
    for (let j = 0; j < allAliases.length; j++) if (modelAllowed(m.keySpec, name, allAliases[j])) aliases.push(allAliases[j]);
    if (!modelAllowed(m.keySpec, name, name) && aliases.length === 0) continue;
    const l = m.listings[r.upstream] || null;
    const state: ListingState = listed[name] ? listingState(l) : 'missing';
    if (state === 'stale') out.stale = true;
    if (state === 'missing') out.partial = true;
    const up = m.health.upstreams[r.upstream];
    const status: Status = up !== undefined ? up.status : 'unknown';
    out.models.push({
      id: name,
      aliases: aliases,
      upstream: r.upstream,
      capabilities: r.capabilities,
      endpoints: endpointsOf(r.capabilities),
      max_model_len: maxModelLen(l, name),
      limits: {
        max_inflight: r.max_inflight > 0 ? r.max_inflight : null,
        max_queue: r.max_queue,
        queue_timeout_s: r.queue_timeout_ms / 1000,
      },
      status: status,
      listing: state,
    });
  }
  return out;
}

function upstreamList(m: MetadataInput): unknown[] {
  const t = m.table;
  const upstreams: unknown[] = [];
  const ups = Object.keys(t.upstreams);
  for (let i = 0; i < ups.length; i++) {
    const h = m.health.upstreams[ups[i]];
    let healthy = 0;
    const servers = h !== undefined ? h.servers : [];
    for (let j = 0; j < servers.length; j++) if (servers[j].status === 'up') healthy++;
    const l = m.listings[ups[i]] || null;
    upstreams.push({
      name: ups[i],
      status: h !== undefined ? h.status : 'unknown',
      servers: t.upstreams[ups[i]].servers.length,
      servers_up: healthy,
      listing: {
        state: listingState(l),
        fetched_at: l !== null ? seconds(l.fetched_at) : null,
        attempted_at: l !== null ? seconds(l.attempted_at) : null,
      },
    });
  }
  return upstreams;
}

export function buildMetadata(m: MetadataInput): unknown {
  const models = modelList(m);
  return {
    object: 'gateway.metadata',
    schema_version: 1,
    gateway: { name: GATEWAY_NAME, version: GATEWAY_VERSION, nginx: m.nginxVersion, njs: m.njsVersion },
    generated_at: Math.floor(m.now / 1000),
    endpoints: endpointList(),
    limits: { max_body_bytes: MAX_BODY_BYTES },
    discovery: {
      cache_ttl_s: MODELS_TTL_MS / 1000,
      stale: models.stale,
      partial: models.partial,
      // Names the backends serve but nobody routes are configuration detail: only for an all-models key.
      unrouted: allModelsAllowed(m.keySpec) ? m.assembled.unrouted : [],
    },
    health: { active: m.health.active, checked_at: m.health.checked_at },
    models: models.models,
    upstreams: upstreamList(m),
  };
}

import { describe, expect, it } from 'vitest';
import { assembleModels, decodeListing, filterModels, Listing, listingState, MODELS_TTL_MS, needsRefresh, nextListing, parseBackendModels } from '../../njs/src/core/discovery';
import { RouteTable } from '../../njs/src/core/routes';

function route(upstream: string) {
  return { upstream, capabilities: ['chat' as const], max_inflight: 0, max_queue: 0, queue_timeout_ms: 30000, slot_lease_ms: 1200000, owned_by: 'vllm', created: 0 };
}

const table: RouteTable = {
  models: { 'org/a': route('be_a'), 'org/b': route('be_b'), 'org/c': route('be_b') },
  aliases: { a: 'org/a', 'a-2': 'org/a', c: 'org/c' },
  upstreams: { be_a: { servers: ['10.0.0.1:8000'], api_key_env: '' }, be_b: { servers: ['10.0.0.2:8000', '10.0.0.3:8000'], api_key_env: '' } },
};

function listing(models: string[], ok = true): Listing {
  return { attempted_at: 2000, fetched_at: ok ? 2000 : 1000, ok, error: ok ? '' : 'down', models: models.map((id) => ({ id, created: 1700000000, owned_by: 'vllm' })) };
}

describe('backend /v1/models answers', () => {
  it('reads vLLM and OpenAI lists and skips malformed entries', () => {
    const p = parseBackendModels({ object: 'list', data: [
      { id: 'm', object: 'model', created: 1700000000.7, owned_by: 'vllm', max_model_len: 8192, root: 'm' },
      { id: '' }, { nope: 1 }, null, { id: 'n' },
    ] });
    expect(p).toEqual({ ok: true, models: [
      { id: 'm', created: 1700000000, owned_by: 'vllm', max_model_len: 8192 },
      { id: 'n', created: 0, owned_by: 'vllm' },
    ] });
    expect(parseBackendModels({ data: 'x' }).ok).toBe(false);
    expect(parseBackendModels(null).ok).toBe(false);
  });

  it('reads llama.cpp\'s list: its per-slot context (meta.n_ctx) is the max_model_len', () => {
    // As llama-server (llama.cpp 0.7.0) answers, "models" (Ollama's shape) beside OpenAI's "data".
    const p = parseBackendModels({ models: [{ name: 'tiny', model: 'tiny' }], object: 'list', data: [
      { id: 'tiny', aliases: ['tiny'], tags: [], object: 'model', created: 1796134872, owned_by: 'llamacpp',
        meta: { vocab_type: 1, n_vocab: 259, n_ctx: 8192, n_ctx_train: 32768, n_embd: 64 } },
      { id: 'both', owned_by: 'x', max_model_len: 4096, meta: { n_ctx: 8192 } },
      { id: 'bad-meta', meta: { n_ctx: '8192' } }, { id: 'null-meta', meta: null }, { id: 'zero', meta: { n_ctx: 0 } },
    ] });
    expect(p).toEqual({ ok: true, models: [
      { id: 'tiny', created: 1796134872, owned_by: 'llamacpp', max_model_len: 8192 },
      { id: 'both', created: 0, owned_by: 'x', max_model_len: 4096 },
      { id: 'bad-meta', created: 0, owned_by: 'vllm' }, { id: 'null-meta', created: 0, owned_by: 'vllm' }, { id: 'zero', created: 0, owned_by: 'vllm' },
    ] });
  });

  it('unions replicas, and keeps the previous models (stale) when none answers', () => {
    const ok = nextListing(null, [{ ok: true, models: [{ id: 'x', created: 1, owned_by: 'o' }] }, { ok: false, error: 'r2: connect failed' },
      { ok: true, models: [{ id: 'x', created: 1, owned_by: 'o' }, { id: 'y', created: 1, owned_by: 'o' }] }], 5000);
    expect(ok).toMatchObject({ ok: true, attempted_at: 5000, fetched_at: 5000, error: '' });
    expect(ok.models.map((m) => m.id)).toEqual(['x', 'y']);
    const failed = nextListing(ok, [{ ok: false, error: 'r1: connect failed' }, { ok: false, error: 'r2: read timed out' }], 9000);
    expect(failed).toMatchObject({ ok: false, attempted_at: 9000, fetched_at: 5000, error: 'r1: connect failed; r2: read timed out' });
    expect(failed.models).toEqual(ok.models);
    expect(listingState(failed)).toBe('stale');
    expect(listingState(nextListing(null, [{ ok: false, error: 'e' }], 1))).toBe('missing');
    expect(listingState(null)).toBe('missing');
  });

  it('refreshes a listing when missing, failed, or older than the TTL', () => {
    const l = listing(['x']);
    expect(needsRefresh(null, 0)).toBe(true);
    expect(needsRefresh(l, 2000 + MODELS_TTL_MS - 1)).toBe(false);
    expect(needsRefresh(l, 2000 + MODELS_TTL_MS)).toBe(true);
    expect(needsRefresh(listing(['x'], false), 2001)).toBe(true);
  });

  it('decodes only what it stored', () => {
    expect(decodeListing(JSON.stringify(listing(['x'])))).toEqual(listing(['x']));
    expect(decodeListing('{')).toBeNull();
    expect(decodeListing('{"models":1}')).toBeNull();
    expect(decodeListing(undefined)).toBeNull();
  });
});

describe('the gateway\'s model list', () => {
  it('lists routed models their upstream serves, each followed by its aliases', () => {
    const a = assembleModels(table, { be_a: listing(['org/a', 'org/b']), be_b: listing(['org/c', 'extra']) });
    expect(a.data.map((m) => m.id)).toEqual(['org/a', 'a', 'a-2', 'org/c', 'c']);
    expect(a.data[1]).toEqual({ id: 'a', object: 'model', created: 1700000000, owned_by: 'vllm' });
    expect(a.canonical).toEqual({ 'org/a': 'org/a', a: 'org/a', 'a-2': 'org/a', 'org/c': 'org/c', c: 'org/c' });
    // org/b is served by be_a, but routed to be_b: not listed, and reported as unrouted on be_a.
    expect(a.unlisted).toEqual(['org/b']);
    expect(a.unrouted).toEqual([{ id: 'org/b', upstream: 'be_a' }, { id: 'extra', upstream: 'be_b' }]);
  });

  it('is partial while an upstream never answered, and falls back to config for created/owned_by', () => {
    const l = listing(['org/a']);
    l.models[0] = { id: 'org/a', created: 0, owned_by: '' };
    const a = assembleModels({ ...table, models: { ...table.models, 'org/a': { ...table.models['org/a'], created: 42, owned_by: 'me' } } }, { be_a: l, be_b: null });
    expect(a.data[0]).toEqual({ id: 'org/a', object: 'model', created: 42, owned_by: 'me' });
    expect(a.unlisted).toEqual(['org/b', 'org/c']);
  });

  it('filters by the key\'s models like routing does (core/access.ts)', () => {
    const a = assembleModels(table, { be_a: listing(['org/a']), be_b: listing(['org/b', 'org/c']) });
    const ids = (spec: string) => filterModels(a.data, a.canonical, spec).map((m) => m.id);
    expect(ids('')).toHaveLength(a.data.length);
    expect(ids('*')).toHaveLength(a.data.length);
    expect(ids('["org/a"]')).toEqual(['org/a', 'a', 'a-2']);
    expect(ids('["c"]')).toEqual(['c']);
    expect(ids('[]')).toEqual([]);
    expect(ids('not json')).toEqual([]);
  });

  it('does not resolve inherited property names', () => {
    const a = assembleModels(table, { be_a: listing(['constructor', '__proto__', 'toString']), be_b: null });
    expect(a.data).toEqual([]);
    expect(a.unrouted.map((u) => u.id)).toEqual(['constructor', '__proto__', 'toString']);
  });
});

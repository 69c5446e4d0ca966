import Ajv from 'ajv';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { assembleModels, Listing } from '../../njs/src/core/discovery';
import { HealthView } from '../../njs/src/core/health';
import { buildMetadata, CAPABILITY_ENDPOINTS, MAX_BODY_BYTES } from '../../njs/src/core/metadata';
import { RouteTable } from '../../njs/src/core/routes';
import { GATEWAY_VERSION } from '../../njs/src/core/version';
import { nginxDir, projectRoot } from '../../tools/config';

const validate = new Ajv({ allErrors: true }).compile(JSON.parse(readFileSync(join(nginxDir, 'metadata-schema.json'), 'utf8')));

const table: RouteTable = {
  models: {
    ocr: { upstream: 'be_ocr', capabilities: ['chat', 'vision'], max_inflight: 8, max_queue: 32, queue_timeout_ms: 120000, slot_lease_ms: 1200000, owned_by: 'vllm', created: 0 },
    emb: { upstream: 'be_emb', capabilities: ['embeddings'], max_inflight: 0, max_queue: 0, queue_timeout_ms: 30000, slot_lease_ms: 1200000, owned_by: 'vllm', created: 0 },
  },
  aliases: { o: 'ocr' },
  upstreams: { be_ocr: { servers: ['10.1.1.1:8000'], api_key_env: '' }, be_emb: { servers: ['10.1.1.2:8000'], api_key_env: '' } },
};
const listings: Record<string, Listing | null> = {
  be_ocr: { attempted_at: 9000, fetched_at: 5000, ok: false, error: '10.1.1.1:8000: connect failed', models: [{ id: 'ocr', created: 1, owned_by: 'vllm', max_model_len: 16384 }, { id: 'spare', created: 1, owned_by: 'vllm' }] },
  be_emb: null,
};
const health: HealthView = {
  active: true, checked_at: 9,
  upstreams: {
    be_ocr: { status: 'down', servers: [{ address: '10.1.1.1:8000', status: 'down', checked_at: 9, error: 'connect failed' }] },
    be_emb: { status: 'up', servers: [{ address: '10.1.1.2:8000', status: 'up', checked_at: 9, error: null }] },
  },
};

function doc(keySpec = '') {
  return buildMetadata({ table, listings, assembled: assembleModels(table, listings), health, keySpec, now: 10_500, nginxVersion: '1.26.3', njsVersion: '0.8.9' }) as Record<string, any>;
}

describe('/v1/metadata document', () => {
  it('validates against nginx/metadata-schema.json and flags stale and partial listings', () => {
    const d = doc();
    expect(validate(d), JSON.stringify(validate.errors)).toBe(true);
    expect(d.discovery).toEqual({ cache_ttl_s: 10, stale: true, partial: true, unrouted: [{ id: 'spare', upstream: 'be_ocr' }] });
    expect(d.models[0]).toEqual({
      id: 'ocr', aliases: ['o'], upstream: 'be_ocr', capabilities: ['chat', 'vision'], endpoints: ['/v1/chat/completions'],
      max_model_len: 16384, limits: { max_inflight: 8, max_queue: 32, queue_timeout_s: 120 }, status: 'down', listing: 'stale',
    });
    expect(d.models[1]).toMatchObject({ id: 'emb', status: 'up', listing: 'missing', limits: { max_inflight: null } });
    expect(d.upstreams[0]).toEqual({ name: 'be_ocr', status: 'down', servers: 1, servers_up: 0, listing: { state: 'stale', fetched_at: 5, attempted_at: 9 } });
    expect(d.generated_at).toBe(10);
  });

  it('shows no backend address or error text', () => {
    expect(JSON.stringify(doc())).not.toMatch(/10\.1\.1|connect failed/);
  });

  it('leaves out models the key may not use, and the unrouted names', () => {
    const d = doc('["o"]');
    expect(validate(d), JSON.stringify(validate.errors)).toBe(true);
    expect(d.models.map((m: { id: string }) => m.id)).toEqual(['ocr']);
    expect(d.models[0].aliases).toEqual(['o']);
    expect(d.discovery.unrouted).toEqual([]);
  });

  it('lists every capability\'s endpoints and the gateway\'s own GET endpoints', () => {
    const paths = doc().endpoints.map((e: { path: string }) => e.path);
    for (const list of Object.values(CAPABILITY_ENDPOINTS)) for (const p of list) expect(paths).toContain(p);
    for (const p of ['/v1/models', '/v1/metadata', '/health', '/readyz', '/metrics']) expect(paths).toContain(p);
  });

  it('states the same limits and version as the config and package.json', () => {
    const conf = readFileSync(join(nginxDir, 'gateway-server.conf'), 'utf8');
    const m = /location \/v1\/ \{[^}]*client_max_body_size (\d+)m;/.exec(conf);
    expect(m, 'client_max_body_size in location /v1/').not.toBeNull();
    expect(MAX_BODY_BYTES).toBe(Number(m![1]) * 1024 * 1024);
    expect(GATEWAY_VERSION).toBe(JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')).version);
  });
});

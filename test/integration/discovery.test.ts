import Ajv from 'ajv';
import OpenAI from 'openai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CHAT, chatBody, EMBED, OCR, post } from '../../tools/clients';
import { nginxDir, projectRoot } from '../../tools/config';
import { MockVllm, startMockVllm } from '../../tools/mockVllm';
import { eventually } from '../support/eventually';
import { freePort } from '../../tools/stack';
import { useGateway } from '../support/useGateway';

type Metadata = {
  gateway: { version: string };
  discovery: { stale: boolean; partial: boolean; unrouted: { id: string; upstream: string }[] };
  health: { active: boolean };
  models: { id: string; aliases: string[]; status: string; listing: string; capabilities: string[]; endpoints: string[]; max_model_len: number | null }[];
  upstreams: { name: string; status: string; servers: number; servers_up: number; listing: { state: string } }[];
};

const validateMetadata = new Ajv({ allErrors: true }).compile(JSON.parse(readFileSync(join(nginxDir, 'metadata-schema.json'), 'utf8')));

async function getJson<T = Record<string, unknown>>(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: T; res: Response }> {
  const res = await fetch(url, { headers });
  return { status: res.status, body: (await res.json()) as T, res };
}

function ids(body: { data: { id: string }[] }): string[] {
  return body.data.map((m) => m.id).sort();
}

describe('model discovery across three backends', () => {
  const gw = useGateway({
    backends: {
      be_ocr: {},
      be_chat: { models: [CHAT, 'unrouted/extra'], maxModelLen: 4096 },
      be_embed: {},
    },
    models: {
      [OCR]: { upstream: 'be_ocr', aliases: ['ocr'], capabilities: ['chat', 'vision'] },
      [CHAT]: { upstream: 'be_chat', aliases: ['chat-default'] },
      [EMBED]: { upstream: 'be_embed', aliases: ['embed'], capabilities: ['embeddings'] },
      'ghost-model': { upstream: 'be_chat' },
    },
    // be_ocr stands for a vLLM started with --api-key: the gateway's own calls must carry it.
    upstreams: { be_ocr: { api_key_env: 'GW_TEST_BACKEND_KEY' } },
    env: { GW_TEST_BACKEND_KEY: 'sk-backend-test' },
    render: { patch: (c) => c.replace('env GW_STATE_DIR;', 'env GW_STATE_DIR;\nenv GW_TEST_BACKEND_KEY;') },
    // A stand-in for the auth stage: the test sends the key's model list in a header.
    includePatches: {
      'discovery-server.conf': (c) => c
        .replace('location = /v1/models {', 'location = /v1/models {\n    set $gw_key_models $http_x_test_key_models;')
        .replace('location ^~ /v1/models/ {', 'location ^~ /v1/models/ {\n    set $gw_key_models $http_x_test_key_models;')
        .replace('location = /v1/metadata {', 'location = /v1/metadata {\n    set $gw_key_models $http_x_test_key_models;'),
    },
  });
  const replaced: MockVllm[] = [];
  afterAll(async () => {
    for (const m of replaced) await m.close();
  });

  it('answers GET /v1/models with the union of the backends plus aliases, in OpenAI\'s shape', async () => {
    const { status, body, res } = await getJson<{ object: string; data: { id: string; [k: string]: unknown }[] }>(`${gw.url}/v1/models`);
    expect(status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(body.object).toBe('list');
    expect(ids(body)).toEqual([CHAT, EMBED, OCR, 'chat-default', 'embed', 'ocr'].sort());
    for (const m of body.data) {
      expect(Object.keys(m).sort()).toEqual(['created', 'id', 'object', 'owned_by']);
      expect(m.object).toBe('model');
      expect(m.created).toBe(1700000000); // the mock's, not invented by the gateway
      expect(m.owned_by).toBe('vllm');
    }
  });

  it('works through the openai SDK: list, and retrieve by an id with a slash and by an alias', async () => {
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const list = [];
    for await (const m of client.models.list()) list.push(m.id);
    expect(list.sort()).toEqual([CHAT, EMBED, OCR, 'chat-default', 'embed', 'ocr'].sort());
    const one = await client.models.retrieve(EMBED);
    expect(one).toMatchObject({ id: EMBED, object: 'model', owned_by: 'vllm' });
    expect((await client.models.retrieve('ocr')).id).toBe('ocr');
  });

  it('GET /v1/models/{id} with a literal slash; unknown ids and not-served models → 404 model_not_found', async () => {
    const ok = await getJson(`${gw.url}/v1/models/${EMBED}`);
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual({ id: EMBED, object: 'model', created: 1700000000, owned_by: 'vllm' });
    for (const id of ['nope', 'ghost-model', 'unrouted/extra', '']) {
      const r = await getJson<{ error: { code: string; type: string } }>(`${gw.url}/v1/models/${id}`);
      expect(r.status, id).toBe(404);
      expect(r.body.error.code).toBe('model_not_found');
    }
  });

  it('sends an upstream\'s own API key (api_key_env) on its /v1/models fetches and probes, and no key elsewhere', async () => {
    const auth = (up: string) => gw.mocks[up].stats.recentHeaders.map((h) => h.authorization);
    expect(auth('be_ocr').length).toBeGreaterThan(0);
    expect(new Set(auth('be_ocr'))).toEqual(new Set(['Bearer sk-backend-test']));
    expect(new Set(auth('be_chat'))).toEqual(new Set([undefined]));
  });

  it('refuses other methods with 405 and Allow', async () => {
    const res = await fetch(`${gw.url}/v1/models`, { method: 'POST', body: '{}' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, HEAD');
    expect((await res.json()).error.code).toBe('method_not_allowed');
  });

  it('filters the list, single models and metadata by the key\'s allowed models', async () => {
    const key = { 'x-test-key-models': JSON.stringify(['ocr', EMBED]) };
    const list = await getJson<{ data: { id: string }[] }>(`${gw.url}/v1/models`, key);
    // As in routing (core/access.ts): a key allowed a model may use its aliases; one allowed only
    // an alias may not use the canonical name.
    expect(ids(list.body)).toEqual([EMBED, 'embed', 'ocr'].sort());
    expect((await getJson(`${gw.url}/v1/models/${CHAT}`, key)).status).toBe(404);
    expect((await getJson(`${gw.url}/v1/models/ocr`, key)).status).toBe(200);
    expect((await getJson(`${gw.url}/v1/models/${OCR}`, key)).status).toBe(404); // the alias is allowed, not the name
    const star = await getJson<{ data: { id: string }[] }>(`${gw.url}/v1/models`, { 'x-test-key-models': '*' });
    expect(star.body.data).toHaveLength(6);
    const md = await getJson<Metadata>(`${gw.url}/v1/metadata`, key);
    expect(md.body.models.map((m) => m.id).sort()).toEqual([EMBED, OCR].sort());
    expect(md.body.models.find((m) => m.id === OCR)!.aliases).toEqual(['ocr']);
    expect(md.body.models.find((m) => m.id === EMBED)!.aliases).toEqual(['embed']);
    expect(md.body.discovery.unrouted).toEqual([]);
    expect(validateMetadata(md.body), JSON.stringify(validateMetadata.errors)).toBe(true);
  });

  it('GET /v1/metadata matches its JSON schema and describes models, health and listing', async () => {
    await eventually(async () => {
      const { body } = await getJson<Metadata>(`${gw.url}/v1/metadata`);
      expect(body.health.active).toBe(true);
    });
    const { status, body } = await getJson<Metadata>(`${gw.url}/v1/metadata`);
    expect(status).toBe(200);
    expect(validateMetadata(body), JSON.stringify(validateMetadata.errors)).toBe(true);
    const pkg = JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8'));
    expect(body.gateway.version).toBe(pkg.version);
    const chat = body.models.find((m) => m.id === CHAT)!;
    expect(chat).toMatchObject({ aliases: ['chat-default'], status: 'up', listing: 'fresh', max_model_len: 4096 });
    expect(chat.endpoints).toEqual(['/v1/chat/completions', '/v1/completions']);
    expect(body.models.find((m) => m.id === EMBED)!.endpoints).toEqual(['/v1/embeddings']);
    expect(body.models.find((m) => m.id === 'ghost-model')).toMatchObject({ status: 'up', listing: 'missing' });
    expect(body.discovery).toMatchObject({ stale: false, partial: true, unrouted: [{ id: 'unrouted/extra', upstream: 'be_chat' }] });
    expect(body.upstreams.map((u) => [u.name, u.status, u.servers_up, u.listing.state]).sort()).toEqual([
      ['be_chat', 'up', 1, 'fresh'], ['be_embed', 'up', 1, 'fresh'], ['be_ocr', 'up', 1, 'fresh'],
    ]);
    expect(JSON.stringify(body)).not.toContain('127.0.0.1');
  });

  it('GET /health answers without asking a backend; /readyz is 200 with every model up', async () => {
    const before = Object.values(gw.mocks).reduce((n, m) => n + m.stats.requests, 0);
    const h = await getJson(`${gw.url}/health`);
    expect(h).toMatchObject({ status: 200, body: { status: 'ok' } });
    await eventually(async () => {
      const r = await getJson<{ status: string; models: Record<string, { status: string }> }>(`${gw.url}/readyz`);
      expect(r.status).toBe(200);
      expect(r.body.status).toBe('ready');
      expect(r.body.models[EMBED].status).toBe('up');
    });
    // Only the refresher's own probes reach the backends; /health itself never does.
    const healthHits = Object.values(gw.mocks).reduce((n, m) => n + (m.stats.byPath['/v1/chat/completions'] ?? 0), 0);
    expect(healthHits).toBe(0);
    expect(Object.values(gw.mocks).reduce((n, m) => n + m.stats.requests, 0)).toBeGreaterThanOrEqual(before);
  });

  it('one backend down: /v1/models still lists its models (stale), its model answers 503 at once, /readyz flips and comes back', async () => {
    const old = gw.mocks.be_embed;
    await old.close();
    await eventually(async () => {
      const r = await getJson<{ status: string; models: Record<string, { status: string }> }>(`${gw.url}/readyz`);
      expect(r.status).toBe(503);
      expect(r.body.status).toBe('not_ready');
      expect(r.body.models[EMBED].status).toBe('down');
      expect(r.body.models[CHAT].status).toBe('up');
    });
    expect((await getJson(`${gw.url}/readyz?policy=any`)).status).toBe(200);
    await eventually(async () => {
      const md = await getJson<Metadata>(`${gw.url}/v1/metadata`);
      expect(md.body.upstreams.find((u) => u.name === 'be_embed')).toMatchObject({ status: 'down', servers_up: 0, listing: { state: 'stale' } });
      expect(md.body.models.find((m) => m.id === EMBED)).toMatchObject({ status: 'down', listing: 'stale' });
      expect(md.body.discovery.stale).toBe(true);
      expect(validateMetadata(md.body), JSON.stringify(validateMetadata.errors)).toBe(true);
    });
    const list = await getJson<{ data: { id: string }[] }>(`${gw.url}/v1/models`);
    expect(list.status).toBe(200);
    expect(ids(list.body)).toContain(EMBED);
    expect(ids(list.body)).toContain('embed');

    const res = await post(`${gw.url}/v1/embeddings`, JSON.stringify({ model: 'embed', input: 'x' }));
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    const err = (await res.json()).error;
    expect(err).toMatchObject({ code: 'model_unavailable', type: 'service_unavailable', param: 'model' });
    // Other models are not affected.
    expect((await post(`${gw.url}/v1/chat/completions`, chatBody(CHAT))).status).toBe(200);

    // The backend restarts on the same port: ready again, listing fresh, requests flow.
    const again = await startMockVllm({ ...old.options, port: old.port });
    replaced.push(again);
    gw.mocks.be_embed = again;
    await eventually(async () => {
      const r = await getJson<{ status: string }>(`${gw.url}/readyz`);
      expect(r.status).toBe(200);
      const md = await getJson<Metadata>(`${gw.url}/v1/metadata`);
      expect(md.body.models.find((m) => m.id === EMBED)).toMatchObject({ status: 'up', listing: 'fresh' });
      expect(md.body.discovery.stale).toBe(false);
    });
    const ok = await post(`${gw.url}/v1/embeddings`, JSON.stringify({ model: 'embed', input: 'x' }));
    expect(ok.status).toBe(200);
    expect(ok.headers.get('x-mock-backend')).toBe('be_embed');
  });
});

describe('a model whose only backend is dead, and one named by host name', async () => {
  const deadPort = await freePort();
  // A backend named by host name: nginx's upstream{} resolves it at start, ngx.fetch cannot without
  // a resolver (none in the test config), so its health stays unknown and routing still uses it.
  const hostMock = await startMockVllm({ name: 'be_host', models: ['host-model'] });
  afterAll(() => hostMock.close());
  const gw = useGateway({
    backends: { be_chat: {} },
    models: { [CHAT]: { upstream: 'be_chat' }, 'dead-model': { upstream: 'be_dead', aliases: ['dead'] }, 'host-model': { upstream: 'be_host' } },
    upstreams: { be_dead: { servers: [`127.0.0.1:${deadPort}`] }, be_host: { servers: [`localhost:${hostMock.port}`] } },
  });

  it('answers 503 model_unavailable from the gateway, without trying the upstream', async () => {
    await eventually(async () => {
      const r = await getJson<{ models: Record<string, { status: string }> }>(`${gw.url}/readyz`);
      expect(r.body.models['dead-model'].status).toBe('down');
    });
    const mark = gw.nginx.accessLog().length;
    const res = await post(`${gw.url}/v1/chat/completions`, chatBody('dead'), { 'x-request-id': 'dead-model-probe' });
    expect(res.status).toBe(503);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.headers.get('retry-after')).toBe('5');
    expect((await res.json()).error.code).toBe('model_unavailable');
    // No connection was attempted: the log line has no upstream address, and nginx logged no
    // connect() failure (which it would have for a proxied attempt to the closed port).
    await eventually(async () => expect(gw.nginx.accessLog().slice(mark)).toContain('dead-model-probe'), { timeoutMs: 5_000 });
    const line = gw.nginx.accessLog().slice(mark).split('\n').find((l) => l.includes('dead-model-probe'))!;
    const rec = JSON.parse(line);
    expect(rec).toMatchObject({ status: 503, model: 'dead-model', upstream_addr: '', error_code: 'model_unavailable' });
    expect(gw.errorLogSinceTestStart()).not.toMatch(/connect\(\) failed/);
  });

  it('/readyz: 503 with policy all, 200 with policy any; /v1/models is partial but answers', async () => {
    const all = await getJson<{ status: string; policy: string; checks_active: boolean }>(`${gw.url}/readyz`);
    expect(all.status).toBe(503);
    expect(all.body).toMatchObject({ status: 'not_ready', policy: 'all', checks_active: true });
    const any = await getJson<{ status: string; policy: string }>(`${gw.url}/readyz?policy=any`);
    expect(any.status).toBe(200);
    expect(any.body).toMatchObject({ status: 'ready', policy: 'any' });
    const list = await getJson<{ data: { id: string }[] }>(`${gw.url}/v1/models`);
    expect(list.status).toBe(200);
    expect(ids(list.body)).toEqual([CHAT]);
    const md = await getJson<Metadata>(`${gw.url}/v1/metadata`);
    expect(md.body.discovery.partial).toBe(true);
    expect(md.body.models.find((m) => m.id === 'dead-model')).toMatchObject({ status: 'down', listing: 'missing' });
    expect(validateMetadata(md.body), JSON.stringify(validateMetadata.errors)).toBe(true);
  });

  it('a host name without resolver: health unknown (not down), still routed, missing from /v1/models', async () => {
    const r = await getJson<{ models: Record<string, { status: string }>; upstreams: Record<string, { servers: { error: string | null }[] }> }>(`${gw.url}/readyz`);
    expect(r.body.models['host-model'].status).toBe('unknown');
    expect(r.body.upstreams.be_host.servers[0].error).toMatch(/resolver/);
    gw.allowErrorLog(/connect\(\) failed/); // nginx may try localhost's ::1 first
    const res = await post(`${gw.url}/v1/chat/completions`, chatBody('host-model'));
    expect(res.status).toBe(200);
    expect(res.headers.get('x-mock-backend')).toBe('be_host');
    const md = await getJson<Metadata>(`${gw.url}/v1/metadata`);
    expect(md.body.models.find((m) => m.id === 'host-model')).toMatchObject({ status: 'unknown', listing: 'missing' });
  });
});

// /metrics names every key id with its counts and /readyz's detail names backend addresses and
// probe errors: by default only loopback (geo $gw_ops_trusted in discovery-http.conf) or the admin
// token sees them. Here loopback is made untrusted, so the test client is "the public".
describe('operator endpoints on a public port', () => {
  const gw = useGateway({
    backends: { be_chat: {} },
    models: { [CHAT]: { upstream: 'be_chat' } },
    includePatches: {
      'discovery-http.conf': (c) => c.replace(/127\.0\.0\.0\/8\s+1;/, '127.0.0.0/8   0;').replace(/::1\/128\s+1;/, '::1/128       0;'),
    },
  });
  const admin = () => ({ authorization: `Bearer ${gw.adminToken}` });

  it('the shipped config trusts loopback only', () => {
    const conf = readFileSync(join(nginxDir, 'discovery-http.conf'), 'utf8');
    const geo = /geo \$gw_ops_trusted \{([^}]*)\}/.exec(conf)![1];
    expect(geo).toMatch(/default\s+0;/);
    expect(geo.split('\n').filter((l) => /\s1;/.test(l)).map((l) => l.trim().split(/\s+/)[0]).sort()).toEqual(['127.0.0.0/8', '::1/128']);
  });

  it('/metrics → 404 not_found JSON for the public, whatever it sends; 200 with the admin token', async () => {
    await post(`${gw.url}/v1/chat/completions`, chatBody(CHAT)); // at least one series with a key label
    const tries: Record<string, string>[] = [{}, { authorization: 'Bearer wrong' }, { authorization: `Bearer ${gw.adminToken}x` }, { authorization: gw.adminToken }, { 'x-forwarded-for': '127.0.0.1' }];
    for (const headers of tries) {
      const r = await fetch(`${gw.url}/metrics?backends=1`, { headers });
      expect(r.status, JSON.stringify(headers)).toBe(404);
      expect(r.headers.get('content-type')).toMatch(/^application\/json/);
      expect((await r.json()).error.code).toBe('not_found');
    }
    const ok = await fetch(`${gw.url}/metrics`, { headers: admin() });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toMatch(/^gw_requests_total\{/m);
  });

  it('/readyz → status and policy only for the public; the full detail with the admin token', async () => {
    await eventually(async () => {
      const pub = await getJson<Record<string, unknown>>(`${gw.url}/readyz`);
      expect(pub.status).toBe(200);
      expect(pub.body).toEqual({ status: 'ready', policy: 'all' });
    });
    const any = await getJson(`${gw.url}/readyz?policy=any`);
    expect(any.body).toEqual({ status: 'ready', policy: 'any' });
    const full = await getJson<{ models: Record<string, unknown>; upstreams: Record<string, unknown> }>(`${gw.url}/readyz`, admin());
    expect(Object.keys(full.body.models)).toEqual([CHAT]);
    expect(JSON.stringify(full.body.upstreams)).toContain('127.0.0.1');
  });

  it('/health stays public', async () => {
    expect(await getJson(`${gw.url}/health`)).toMatchObject({ status: 200, body: { status: 'ok' } });
  });
});

import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { CHAT, chatBody, EMBED, post, postHeadersOnly, sha256 } from '../../tools/clients';
import { eventually } from '../support/eventually';
import { rawRequest } from '../support/rawHttp';
import { useGateway } from '../support/useGateway';

const BOOT_KEY = 'sk-gw-bootstrap-key-for-tests-0123456789';
const LIMITED_KEY = 'sk-gw-limited-key-for-tests-0123456789';
const keysDir = mkdtempSync(join(tmpdir(), 'gw-keys-'));
chmodSync(keysDir, 0o755);
const keysFile = join(keysDir, 'keys.json');
function writeKeys(extra: object[] = []): void {
  writeFileSync(keysFile, JSON.stringify({ keys: [
    { id: 'boot', hash: `sha256:${sha256(BOOT_KEY)}`, label: 'ops', models: '*' },
    { id: 'limited', hash: `sha256:${sha256(LIMITED_KEY)}`, models: [CHAT], rpm: 3 },
    ...extra,
  ] }));
}
writeKeys();

const gw = useGateway({
  auth: true,
  env: { GW_KEYS_FILE: keysFile },
  backends: { be_chat: {}, be_embed: {} },
  models: { [CHAT]: { upstream: 'be_chat', aliases: ['chat'] }, [EMBED]: { upstream: 'be_embed' } },
});

/** Every secret the suite saw; none may ever appear in a log. */
const secrets = new Set<string>([BOOT_KEY, LIMITED_KEY]);

function bearer(key: string): Record<string, string> {
  return { authorization: `Bearer ${key}` };
}

async function adminCall(method: string, path: string, body?: unknown, token = gw.adminToken): Promise<Response> {
  return fetch(`${gw.adminUrl}${path}`, {
    method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function createKey(body: object): Promise<{ id: string; key: string } & Record<string, unknown>> {
  const res = await adminCall('POST', '/admin/keys', body);
  expect(res.status).toBe(201);
  const out = await res.json();
  secrets.add(out.key);
  return out;
}

async function chatStatus(key: string, model = CHAT): Promise<number> {
  return (await post(`${gw.url}/v1/chat/completions`, chatBody(model), bearer(key))).status;
}

async function errorOf(res: Response): Promise<{ code: string; message: string; type: string }> {
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  return (await res.json()).error;
}

describe('API keys on the client path', () => {
  it('no key → 401 missing_api_key, through the openai SDK too', async () => {
    const res = await post(`${gw.url}/v1/chat/completions`, chatBody(CHAT));
    expect(res.status).toBe(401);
    expect((await errorOf(res)).code).toBe('missing_api_key');
    const sdk = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'sk-wrong', maxRetries: 0 });
    await expect(sdk.chat.completions.create({ model: CHAT, messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({ status: 401, code: 'invalid_api_key' });
  });

  it('unknown and malformed keys → 401 invalid_api_key', async () => {
    for (const headers of [bearer('sk-nope'), { authorization: 'Basic Zm9vOmJhcg==' }, { authorization: 'Bearer a b' }]) {
      const res = await post(`${gw.url}/v1/chat/completions`, chatBody(CHAT), headers);
      expect(res.status).toBe(401);
      expect((await errorOf(res)).code).toBe('invalid_api_key');
    }
  });

  it('the request path\'s shortcut for "Bearer <key>" and the full header parse agree on every spelling', async () => {
    const made = await createKey({ models: '*' });
    for (const key of [BOOT_KEY, made.key]) {
      // Spellings only the full parse reads: each still authenticates the key.
      for (const a of [`Bearer ${key}`, `bearer ${key}`, `BEARER  ${key}`, `Bearer\t${key}`, `Bearer ${key} \t`]) {
        const res = await post(`${gw.url}/v1/chat/completions`, chatBody(CHAT), { authorization: a });
        expect(res.status, JSON.stringify(a)).toBe(200);
      }
      // Malformed around a real key: refused as malformed, never as the key.
      for (const a of [`Bearer ${key} x`, `Bearer ${key}\u00ff`, `Bearer${key}`, `Basic ${key}`]) {
        const res = await post(`${gw.url}/v1/chat/completions`, chatBody(CHAT), { authorization: a });
        expect(res.status, JSON.stringify(a)).toBe(401);
        expect((await errorOf(res)).message, JSON.stringify(a)).toMatch(/malformed/);
      }
    }
    // Non-ASCII case variants of ASCII letters (U+017F folds to "s" in a caseless regex) are malformed.
    for (const bytes of ['\xc5\xbfk-gw-x', 'sk-gw-\xe2\x84\xaa']) {
      const raw = Buffer.concat([Buffer.from(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer `),
        Buffer.from(bytes, 'latin1'), Buffer.from(`\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`)]);
      const res = await rawRequest(gw.port, raw);
      expect(res.status).toBe(401);
      expect(JSON.parse(res.body).error.message).toMatch(/malformed/);
    }
  });

  it('accepts Authorization: Bearer, api-key and x-api-key; the openai SDK works', async () => {
    expect(await chatStatus(BOOT_KEY)).toBe(200);
    expect((await post(`${gw.url}/v1/chat/completions`, chatBody(CHAT), { 'api-key': BOOT_KEY })).status).toBe(200);
    expect((await post(`${gw.url}/v1/chat/completions`, chatBody(CHAT), { 'x-api-key': BOOT_KEY })).status).toBe(200);
    const sdk = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: BOOT_KEY, maxRetries: 0 });
    const r = await sdk.chat.completions.create({ model: CHAT, messages: [{ role: 'user', content: 'x' }] });
    expect(r.model).toBe(CHAT);
  });

  it('strips the client key before proxying', async () => {
    gw.mocks.be_chat.resetStats();
    await post(`${gw.url}/v1/chat/completions`, chatBody(CHAT), { ...bearer(BOOT_KEY), 'api-key': BOOT_KEY, 'x-api-key': BOOT_KEY });
    const h = gw.mocks.be_chat.stats.recentHeaders.at(-1)!;
    expect(h.authorization).toBeUndefined();
    expect(h['api-key']).toBeUndefined();
    expect(h['x-api-key']).toBeUndefined();
  });

  it('refuses before reading the body: 401 while a 60 MB upload is still unsent', async () => {
    const answer = await postHeadersOnly(`${gw.url}/v1/chat/completions`, 60 * 1024 * 1024, '{"model":"');
    expect(answer.code).toBe(401);
    expect(JSON.parse(answer.body).error.code).toBe('missing_api_key');
  });

  it('a key limited to some models gets 404 model_not_found for the others', async () => {
    const res = await post(`${gw.url}/v1/embeddings`, JSON.stringify({ model: EMBED, input: 'x' }), bearer(LIMITED_KEY));
    expect(res.status).toBe(404);
    expect((await errorOf(res)).code).toBe('model_not_found');
  });

  it('rate limit: rpm 3 → the 4th request in a minute is 429 with Retry-After', async () => {
    // A key of its own: no other test's requests count against its minute.
    const k = await createKey({ models: [CHAT], rpm: 3 });
    const statuses: number[] = [];
    let last: Response | undefined;
    for (let i = 0; i < 4; i++) {
      last = await post(`${gw.url}/v1/chat/completions`, chatBody(CHAT), bearer(k.key));
      statuses.push(last.status);
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
    expect(last!.headers.get('x-request-id')).toMatch(/^[0-9a-f]{32}$/);
    const retry = Number(last!.headers.get('retry-after'));
    expect(retry).toBeGreaterThanOrEqual(1);
    expect(retry).toBeLessThanOrEqual(60);
    expect((await errorOf(last!)).code).toBe('rate_limit_exceeded');
  });

  it('burst limit answers 429 Retry-After: 1 and recovers the next second', async () => {
    // The window is the clock's second. Three requests sent and answered within one second (by
    // this machine's clock, which the gateway shares) must meet the limit; a try that crossed a
    // second boundary proves nothing and is made again with a fresh key.
    let s: number[] = [];
    let k = { key: '' };
    for (let attempt = 0; attempt < 10; attempt++) {
      k = await createKey({ models: '*', burst: 2 });
      const second = Math.floor(Date.now() / 1000);
      s = [await chatStatus(k.key), await chatStatus(k.key), await chatStatus(k.key)];
      if (Math.floor(Date.now() / 1000) === second) break;
    }
    expect(s).toEqual([200, 200, 429]);
    await eventually(async () => expect(await chatStatus(k.key)).toBe(200), { timeoutMs: 5_000, everyMs: 100 });
  });
});

describe('admin API', () => {
  it('needs the admin token', async () => {
    const none = await fetch(`${gw.adminUrl}/admin/keys`);
    expect(none.status).toBe(401);
    expect((await errorOf(none)).code).toBe('invalid_admin_token');
    const wrong = await adminCall('GET', '/admin/keys', undefined, 'nope');
    expect(wrong.status).toBe(401);
    const client = await fetch(`${gw.url}/admin/keys`, { headers: { authorization: `Bearer ${gw.adminToken}` } });
    expect(client.status).toBe(404); // not on the client-facing port at all
  });

  it('creates a key that works at once in every worker, shown once, listed without secrets', async () => {
    const k = await createKey({ label: 'team-a', models: [CHAT], tier: 'high' });
    expect(k.key).toMatch(/^sk-gw-[A-Za-z0-9_-]{32}$/);
    expect(k).toMatchObject({ object: 'api_key', label: 'team-a', tier: 'high', source: 'admin' });
    // Fresh connections spread over both workers.
    const statuses = await Promise.all(Array.from({ length: 16 }, () =>
      fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', body: chatBody(CHAT), headers: { ...bearer(k.key), connection: 'close' } }).then((r) => r.status)));
    expect(new Set(statuses)).toEqual(new Set([200]));
    const list = await (await adminCall('GET', '/admin/keys')).json();
    const text = JSON.stringify(list);
    expect(text).not.toContain(k.key);
    expect(text).not.toContain(sha256(k.key));
    expect(list.data.map((d: { id: string }) => d.id)).toEqual(expect.arrayContaining(['boot', 'limited', k.id]));
    const one = await (await adminCall('GET', `/admin/keys/${k.id}`)).json();
    expect(one).toMatchObject({ id: k.id, models: [CHAT] });
    expect(one.key).toBeUndefined();
  });

  it('updates models and revokes at once', async () => {
    const k = await createKey({ id: 'team-b', models: [CHAT] });
    expect(await chatStatus(k.key, 'chat')).toBe(200); // an alias of an allowed model is allowed
    expect((await post(`${gw.url}/v1/embeddings`, JSON.stringify({ model: EMBED, input: 'x' }), bearer(k.key))).status).toBe(404);
    const up = await adminCall('PATCH', '/admin/keys/team-b', { models: [EMBED] });
    expect(up.status).toBe(200);
    expect((await post(`${gw.url}/v1/embeddings`, JSON.stringify({ model: EMBED, input: 'x' }), bearer(k.key))).status).toBe(200);
    expect(await chatStatus(k.key)).toBe(404);
    expect((await adminCall('DELETE', '/admin/keys/team-b')).status).toBe(200);
    expect(await chatStatus(k.key)).toBe(401);
    expect((await adminCall('GET', '/admin/keys/team-b')).status).toBe(404);
  });

  it('rotates: the old secret stops working, the new one works', async () => {
    const k = await createKey({ models: '*' });
    const res = await adminCall('POST', `/admin/keys/${k.id}/rotate`);
    expect(res.status).toBe(200);
    const rotated = await res.json();
    secrets.add(rotated.key);
    expect(rotated.id).toBe(k.id);
    expect(await chatStatus(k.key)).toBe(401);
    expect(await chatStatus(rotated.key)).toBe(200);
  });

  it('expired and disabled keys are refused', async () => {
    const k = await createKey({ models: '*', expires_in: 1 });
    expect(await chatStatus(k.key)).toBe(200);
    await eventually(async () => expect(await chatStatus(k.key)).toBe(401), { timeoutMs: 10_000, everyMs: 200 });
    const d = await createKey({ models: '*', disabled: true });
    expect(await chatStatus(d.key)).toBe(401);
    await adminCall('PATCH', `/admin/keys/${d.id}`, { disabled: false });
    expect(await chatStatus(d.key)).toBe(200);
  });

  it('an unwritable GW_STATE_DIR still hands out the key, flagged persisted: false', async () => {
    gw.allowErrorLog(/could not write the key state file/);
    const { chmodSync } = await import('node:fs');
    chmodSync(gw.stateDir, 0o555);
    try {
      const res = await adminCall('POST', '/admin/keys', { models: '*' });
      expect(res.status).toBe(201);
      const k = await res.json();
      secrets.add(k.key);
      expect(k.persisted).toBe(false);
      expect(await chatStatus(k.key)).toBe(200);
      expect(gw.errorLogSinceTestStart()).toMatch(/must be writable by the nginx workers/);
    } finally {
      chmodSync(gw.stateDir, 0o700);
    }
  });

  it('a method a resource does not have → 405 naming the ones it has in Allow', async () => {
    const k = await createKey({ models: '*' });
    const cases: [string, string, string][] = [
      ['PUT', '/admin/keys', 'GET, POST'], ['DELETE', '/admin/keys', 'GET, POST'],
      ['POST', `/admin/keys/${k.id}`, 'GET, PATCH, DELETE'], ['PUT', `/admin/keys/${k.id}`, 'GET, PATCH, DELETE'],
      ['GET', `/admin/keys/${k.id}/rotate`, 'POST'], ['DELETE', `/admin/keys/${k.id}/rotate`, 'POST'],
    ];
    for (const [method, path, allow] of cases) {
      const res = await adminCall(method, path);
      expect(res.status, `${method} ${path}`).toBe(405);
      expect(res.headers.get('allow'), `${method} ${path}`).toBe(allow);
      expect((await errorOf(res)).code).toBe('method_not_allowed');
    }
    // None of them changed the key.
    expect(await chatStatus(k.key)).toBe(200);
  });

  it('keys from GW_KEYS_FILE are read-only through the API', async () => {
    const res = await adminCall('PATCH', '/admin/keys/boot', { rpm: 1 });
    expect(res.status).toBe(409);
    expect((await errorOf(res)).code).toBe('key_read_only');
  });

  it('malformed admin input → 400 with a message naming the fix', async () => {
    const cases: [unknown, string][] = [
      ['{', 'invalid_json'], [[1, 2], 'invalid_request'], [{ rpm: -1 }, 'invalid_request'], [{ models: 'gpt' }, 'invalid_request'],
      [{ tier: 'vip' }, 'invalid_request'], [{ nope: 1 }, 'invalid_request'], [{ id: 'bad id!' }, 'invalid_request'],
      [{ id: 'boot' }, 'invalid_request'], [{ id: '.' }, 'invalid_request'], [{ id: '..' }, 'invalid_request'],
      [{ id: '-lead' }, 'invalid_request'], [{ id: 'x'.repeat(65) }, 'invalid_request'],
    ];
    for (const [body, code] of cases) {
      const res = await adminCall('POST', '/admin/keys', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect((await errorOf(res)).code).toBe(code);
    }
  });
  it('key ids follow one rule everywhere: every id the API accepts can be read, patched, rotated and deleted', async () => {
    for (const id of ['a', '0.x', 'A-b_c.d', 'z'.repeat(64)]) {
      expect((await createKey({ id, models: '*' })).id).toBe(id);
      expect((await adminCall('GET', `/admin/keys/${id}`)).status).toBe(200);
      expect((await adminCall('PATCH', `/admin/keys/${id}`, { label: 'x' })).status).toBe(200);
      const rot = await adminCall('POST', `/admin/keys/${id}/rotate`);
      expect(rot.status).toBe(200);
      secrets.add((await rot.json()).key);
      expect((await adminCall('DELETE', `/admin/keys/${id}`)).status).toBe(200);
    }
    // An id outside the rule in a path: 400 naming the rule (nginx itself folds "/." and "/..").
    const res = await adminCall('GET', '/admin/keys/-lead');
    expect(res.status).toBe(400);
    expect((await errorOf(res)).message).toMatch(/letter or digit followed by up to 63/);
  });
});

describe('persistence', () => {
  it('a key made through the API survives reload and a full restart', async () => {
    const k = await createKey({ id: 'durable', models: '*' });
    await gw.nginx.reload();
    expect(await chatStatus(k.key)).toBe(200);
    await gw.restart();
    expect(await chatStatus(k.key)).toBe(200);
    expect(await chatStatus(BOOT_KEY)).toBe(200);
  });

  it('picks up a changed GW_KEYS_FILE within the sync interval', async () => {
    const NEW_KEY = 'sk-gw-added-by-ops-in-git-0123456789';
    secrets.add(NEW_KEY);
    expect(await chatStatus(NEW_KEY)).toBe(401);
    writeKeys([{ id: 'ops-added', hash: `sha256:${sha256(NEW_KEY)}`, models: '*' }]);
    await eventually(async () => expect(await chatStatus(NEW_KEY)).toBe(200), { everyMs: 250 });
  });
});

describe('hostile input', () => {
  it('malformed headers and admin bodies: every answer is a 4xx JSON error, nginx stays up, the store is unchanged', async () => {
    const before = await (await adminCall('GET', '/admin/keys')).text();
    const deep = '['.repeat(100000) + ']'.repeat(100000);
    const bodies: (string | Buffer)[] = [
      '', 'null', '"str"', '123', 'true', '[]', deep, `{"label":${deep}}`, '{"models":[1,2,3]}', '{"rpm":1e309}',
      '{"rpm":"10"}', '{"expires_at":-5}', '{"label":"' + 'x'.repeat(300) + '"}', Buffer.from([0xff, 0xfe, 0x00, 0x7b]),
      JSON.stringify({ models: Array.from({ length: 5000 }, (_, i) => `m${i}`) }), '{"__proto__":{"rpm":5}}',
      'x'.repeat(70 * 1024),
    ];
    for (const b of bodies) {
      for (const path of ['/admin/keys', '/admin/keys/durable']) {
        const res = await fetch(`${gw.adminUrl}${path}`, { method: path === '/admin/keys' ? 'POST' : 'PATCH', body: b as BodyInit,
          headers: { authorization: `Bearer ${gw.adminToken}`, 'content-type': 'application/json' } });
        expect(res.status, `${path} ${String(b).slice(0, 40)}`).toBeGreaterThanOrEqual(400);
        expect(res.status).toBeLessThan(500);
        expect((await res.json()).error.code).toBeTypeOf('string');
      }
    }
    const headerSets: Record<string, string>[] = [
      { authorization: 'Bearer ' + 'k'.repeat(4000) }, { authorization: 'Bearer' }, { authorization: '' },
      { authorization: 'Bearer \u00ff\u00fe' }, { 'x-api-key': 'a'.repeat(600) }, { 'api-key': ' ' },
      { authorization: `Bearer ${gw.adminToken}` },
    ];
    for (const h of headerSets) {
      const res = await post(`${gw.url}/v1/chat/completions`, chatBody(CHAT), h);
      expect(res.status, JSON.stringify(h).slice(0, 60)).toBe(401);
      expect((await res.json()).error.code).toMatch(/^(missing|invalid)_api_key$/);
    }
    for (const h of [{ authorization: 'Bearer x'.repeat(1000) }, { authorization: `Bearer ${BOOT_KEY}\u0000` }]) {
      const res = await fetch(`${gw.adminUrl}/admin/keys`, { headers: h }).catch(() => null);
      if (res) expect(res.status).toBe(401);
    }
    expect(await (await adminCall('GET', '/admin/keys')).text()).toBe(before);
    expect(await chatStatus(BOOT_KEY)).toBe(200);
  });
});

describe('discovery endpoints need a key too', () => {
  it('GET /v1/models: 401 without a key, filtered to the key\'s models with one', async () => {
    const none = await fetch(`${gw.url}/v1/models`);
    expect(none.status).toBe(401);
    expect((await errorOf(none)).code).toBe('missing_api_key');
    expect((await fetch(`${gw.url}/v1/metadata`)).status).toBe(401);
    expect((await fetch(`${gw.url}/v1/models/${CHAT}`)).status).toBe(401);
    const all = await (await fetch(`${gw.url}/v1/models`, { headers: bearer(BOOT_KEY) })).json();
    expect(all.data.map((m: { id: string }) => m.id)).toEqual(expect.arrayContaining([CHAT, EMBED]));
    const k = await createKey({ models: [EMBED] });
    const some = await (await fetch(`${gw.url}/v1/models`, { headers: bearer(k.key) })).json();
    expect(some.data.map((m: { id: string }) => m.id)).toEqual([EMBED]);
    expect((await fetch(`${gw.url}/v1/models/${CHAT}`, { headers: bearer(k.key) })).status).toBe(404);
    expect((await fetch(`${gw.url}/health`)).status).toBe(200); // liveness stays open
  });
});

describe('no secret in any log', () => {
  it('greps every log nginx wrote in this suite', async () => {
    const logs = gw.nginx.errorLog() + gw.nginx.accessLog();
    expect(logs.length).toBeGreaterThan(1000);
    expect(secrets.size).toBeGreaterThan(8);
    for (const s of secrets) expect(logs.includes(s), 'a key leaked into a log').toBe(false);
    expect(logs.includes(gw.adminToken)).toBe(false);
  });
});

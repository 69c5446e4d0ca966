/**
 * JWT / OIDC bearer tokens next to API keys (docs/jwt.md), through a real nginx: HS* with
 * GW_JWT_SECRET, RS/PS/ES with the JWKS of a local identity-provider stand-in that rotates keys and
 * can go down. Every refusal must be the one 401 invalid_api_key JSON, decided before the body.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import { CHAT, chatBody, EMBED, post } from '../../tools/clients';
import { ASYMMETRIC, b64u, keyPair, KeyPair, mint, publicJwk, signJwt } from '../../tools/jwt';
import { sleep } from '../../tools/nginx';
import { eventually } from '../support/eventually';
import { GatewayRef, useGateway } from '../support/useGateway';

const SECRET = 'jwt-test-secret-0123456789-abcdefghijklmnopqrstuvwxyz';
const ISS = 'https://idp.test/realms/ai';
const AUD = 'ai-gateway';
const API_KEY = 'sk-gw-api-key-beside-jwt-0123456789';

/** A JWKS endpoint on 127.0.0.1: its keys can change and it can fail like a provider that is down. */
const idp = { keys: ASYMMETRIC.map((a) => keyPair(a, `k-${a}`)), down: false, hits: 0, hitsWhileDown: 0 };
let jwksServer: Server;
let jwksUrl = '';
beforeAll(async () => {
  jwksServer = createServer((_req, res) => {
    idp.hits++;
    if (idp.down) {
      idp.hitsWhileDown++;
      res.writeHead(503).end('down');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: idp.keys.map(publicJwk) }));
  });
  await new Promise<void>((ok) => jwksServer.listen(0, '127.0.0.1', () => ok()));
  jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/realms/ai/protocol/openid-connect/certs`;
});
afterAll(() => new Promise<void>((ok) => jwksServer.close(() => ok())));

const dir = mkdtempSync(join(tmpdir(), 'gw-jwt-'));
chmodSync(dir, 0o755);
const keysFile = join(dir, 'keys.json');
writeFileSync(keysFile, JSON.stringify({ keys: [
  { id: 'ops', hash: `sha256:${createHash('sha256').update(API_KEY).digest('hex')}`, models: '*' },
] }));

let gw: GatewayRef;

/** Every token the suite made; none may ever appear in a log. */
const tokens: string[] = [];
function claims(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { iss: ISS, aud: AUD, sub: 'alice', models: [CHAT], ...extra };
}
function hs(extra: Record<string, unknown> = {}, alg: 'HS256' | 'HS384' | 'HS512' = 'HS256'): string {
  const t = mint(alg, SECRET, claims(extra));
  tokens.push(t);
  return t;
}
function signed(k: KeyPair, extra: Record<string, unknown> = {}, header: Record<string, unknown> = {}): string {
  const t = mint(k.alg, k, claims(extra), header);
  tokens.push(t);
  return t;
}
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

async function chat(token: string, model = CHAT): Promise<Response> {
  return post(`${gw.url}/v1/chat/completions`, chatBody(model), bearer(token));
}

async function expectRefused(res: Response): Promise<void> {
  expect(res.status).toBe(401);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const e = (await res.json()).error;
  expect(e).toMatchObject({ type: 'authentication_error', code: 'invalid_api_key', param: null });
  expect(e.message).toBe('Incorrect API key provided, or the key was revoked or has expired.');
}

/** Announces a large body, sends a few bytes and resolves with nginx's answer without sending the rest. */
function headersOnly(url: string, announced: number, headers: Record<string, string>): Promise<{ code: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { ...headers, 'content-length': String(announced), 'content-type': 'application/json' } }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => { req.destroy(); resolve({ code: res.statusCode ?? 0, body }); });
    });
    req.on('error', reject);
    req.write('{"model":"');
  });
}


describe('JWT bearer tokens', () => {
  gw = useGateway(() => ({
    auth: true,
    env: { GW_KEYS_FILE: keysFile, GW_JWT_SECRET: SECRET, GW_JWKS_URL: jwksUrl },
    backends: { be_chat: {}, be_embed: {} },
    models: { [CHAT]: { upstream: 'be_chat', aliases: ['chat'] }, [EMBED]: { upstream: 'be_embed' } },
    jwt: {
      issuer: ISS, audience: AUD, leeway: '5s', max_token_bytes: 4096, jwks_refresh: '1h', jwks_retry: '1s',
      policies: [{ group: 'embedders', models: [EMBED], tier: 'low', rpm: 2 }, { group: 'staff', models: '*' }],
    },
  }));

  it('HS256 token whose claims allow model A: 200 on A (openai SDK), 404 on B', async () => {
    const client = new OpenAI({ apiKey: hs(), baseURL: `${gw.url}/v1`, maxRetries: 0 });
    const out = await client.chat.completions.create({ model: CHAT, messages: [{ role: 'user', content: 'hi' }] });
    expect(out.choices.length).toBeGreaterThan(0);
    await expect(client.embeddings.create({ model: EMBED, input: 'x' })).rejects.toMatchObject({ status: 404, code: 'model_not_found' });
  });

  it('HS384 and HS512 verify too; the alias of an allowed model is allowed', async () => {
    expect((await chat(hs({}, 'HS384'))).status).toBe(200);
    expect((await chat(hs({}, 'HS512'), 'chat')).status).toBe(200);
  });

  it.each(ASYMMETRIC)('%s token verified with the JWKS key of its kid', async (alg) => {
    const k = idp.keys.find((x) => x.alg === alg)!;
    await eventually(async () => expect((await chat(signed(k))).status).toBe(200), { everyMs: 100 });
  });

  it('key id and model list reach /v1/models, the access log, the usage ledger and the metrics', async () => {
    const t = hs({ sub: 'svc-reporting', tier: 'high' });
    const res = await chat(t);
    expect(res.status).toBe(200);
    const models = await (await fetch(`${gw.url}/v1/models`, { headers: bearer(t) })).json();
    const ids = models.data.map((m: { id: string }) => m.id);
    expect(ids).toContain(CHAT);
    expect(ids).not.toContain(EMBED);
    await eventually(() => {
      const lines = gw.nginx.accessLog().trim().split('\n').map((l) => JSON.parse(l));
      expect(lines.some((l) => l.key_id === 'jwt:svc-reporting' && l.status === 200)).toBe(true);
    });
    // The usage ledger and the metrics count the request under the token's key id.
    const ledger = async () => (await (await fetch(`${gw.adminUrl}/admin/usage?key_id=jwt:svc-reporting`, { headers: { authorization: `Bearer ${gw.adminToken}` } })).json()).data;
    await eventually(async () => expect((await ledger()).some((u: { model: string; requests: number }) => u.model === CHAT && u.requests >= 1)).toBe(true));
    expect(await (await fetch(`${gw.url}/metrics`)).text()).toMatch(/gw_requests_total\{[^}]*key_id="jwt:svc-reporting"/);
  });

  it('a key id with | " and \\ reaches the ledger with | as _ and the metrics escaped (the log phase\'s slow path)', async () => {
    const sub = 'odd|b"c\\d';
    expect((await chat(hs({ sub }))).status).toBe(200);
    const ledger = async () => (await (await fetch(`${gw.adminUrl}/admin/usage?key_id=${encodeURIComponent('jwt:odd_b"c\\d')}`,
      { headers: { authorization: `Bearer ${gw.adminToken}` } })).json()).data;
    await eventually(async () => expect(await ledger()).toMatchObject([{ key_id: 'jwt:odd_b"c\\d', model: CHAT, requests: 1, errors: 0 }]));
    const text = await (await fetch(`${gw.url}/metrics`)).text();
    expect(text).toContain(`gw_requests_total{model="${CHAT}",status_class="2xx",key_id="jwt:odd|b\\"c\\\\d"} 1`);
  });

  it('expired, not yet valid and issued-in-the-future tokens: 401 JSON; inside the leeway: 200', async () => {
    const now = Math.floor(Date.now() / 1000);
    await expectRefused(await chat(hs({ exp: now - 60 })));
    await expectRefused(await chat(hs({ nbf: now + 120 })));
    await expectRefused(await chat(hs({ iat: now + 120 })));
    expect((await chat(hs({ exp: now - 2 }))).status).toBe(200);
    const noExp = signJwt({ alg: 'HS256', typ: 'JWT' }, claims({ iat: now }), SECRET);
    tokens.push(noExp);
    await expectRefused(await chat(noExp));
  });

  it('a token verified moments ago skips the signature math but not the claims: it expires on time', async () => {
    const exp = Math.floor(Date.now() / 1000) - 3;
    const t = hs({ exp, sub: 'short-lived' });
    expect((await chat(t)).status).toBe(200);
    expect((await chat(t)).status).toBe(200);
    // Past exp + leeway (5 s): the cached signature does not keep it alive.
    while (Math.floor(Date.now() / 1000) - 5 < exp) await sleep(200);
    await expectRefused(await chat(t));
  });

  it('wrong or missing iss / aud: 401', async () => {
    await expectRefused(await chat(hs({ iss: 'https://evil.test/' })));
    await expectRefused(await chat(hs({ aud: 'someone-else' })));
    await expectRefused(await chat(hs({ aud: undefined })));
    expect((await chat(hs({ aud: ['other', AUD] })))).toHaveProperty('status', 200);
  });

  it('tampered payload or signature: 401', async () => {
    const t = hs();
    const [h, , s] = t.split('.');
    const forged = `${h}.${b64u(JSON.stringify(claims({ models: '*', exp: Math.floor(Date.now() / 1000) + 3600 })))}.${s}`;
    tokens.push(forged);
    await expectRefused(await chat(forged, EMBED));
    const flipped = t.slice(0, -2) + (t.slice(-2, -1) === 'A' ? 'B' : 'A') + t.slice(-1);
    await expectRefused(await chat(flipped));
    const rs = signed(idp.keys[0]);
    await expectRefused(await chat(rs.slice(0, rs.lastIndexOf('.') + 1) + b64u(Buffer.alloc(256, 7))));
  });

  it('any one-character change anywhere in a valid token is refused (random positions, HS256 and ES256)', async () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    let seed = 12345;
    const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
    for (const t of [hs(), signed(idp.keys.find((k) => k.alg === 'ES256')!)]) {
      expect((await chat(t)).status).toBe(200);
      for (let i = 0; i < 25; i++) {
        const at = i === 0 ? t.length - 1 : rnd(t.length);
        if (t[at] === '.') continue;
        // First: the last character's unused low bit, which decodes to the very same signature bytes.
        let c = i === 0 ? alphabet[alphabet.indexOf(t[at]) ^ 1] : alphabet[rnd(64)];
        if (c === t[at]) c = c === 'A' ? 'B' : 'A';
        const m = t.slice(0, at) + c + t.slice(at + 1);
        tokens.push(m);
        const res = await chat(m);
        expect(res.status, `changed position ${at} of ${t.length}`).toBe(401);
      }
    }
  });

  it('alg "none", an unknown alg, and HS256 signed with the RSA public key as the secret: 401', async () => {
    const body = b64u(JSON.stringify(claims({ exp: Math.floor(Date.now() / 1000) + 3600 })));
    for (const alg of ['none', 'None', 'HS1', 'EdDSA']) {
      const t = `${b64u(JSON.stringify({ alg, typ: 'JWT' }))}.${body}.`;
      await expectRefused(await chat(t));
      await expectRefused(await chat(t + 'c2ln'));
    }
    const rsa = idp.keys.find((k) => k.alg === 'RS256')!;
    for (const secret of [rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString(), JSON.stringify(publicJwk(rsa))]) {
      const t = signJwt({ alg: 'HS256', typ: 'JWT', kid: rsa.kid }, claims({ exp: Math.floor(Date.now() / 1000) + 3600 }), secret);
      tokens.push(t);
      await expectRefused(await chat(t));
    }
    // An RS256 token whose kid names an EC key, and an ES256 token under an RSA key's kid.
    const ec = idp.keys.find((k) => k.alg === 'ES256')!;
    await expectRefused(await chat(signed(rsa, {}, { kid: ec.kid })));
    await expectRefused(await chat(signed(ec, {}, { kid: rsa.kid })));
  });

  it('oversize token and oversize header: 401 (before the body is read)', async () => {
    await expectRefused(await chat(hs({ pad: 'x'.repeat(4000) })));
    const bigHeader = signJwt({ alg: 'HS256', typ: 'JWT', x: 'y'.repeat(2000) }, claims({ exp: Math.floor(Date.now() / 1000) + 3600 }), SECRET);
    tokens.push(bigHeader);
    await expectRefused(await chat(bigHeader));
    // Refused from the headers alone: a 20 MB body is never read.
    const res = await headersOnly(`${gw.url}/v1/chat/completions`, 20 * 1024 * 1024, bearer(hs({ exp: 1 })));
    expect(res.code).toBe(401);
    expect(JSON.parse(res.body).error.code).toBe('invalid_api_key');
  });

  it('malformed claims refuse the token: models not a list, unknown tier, no sub', async () => {
    await expectRefused(await chat(hs({ models: CHAT })));
    await expectRefused(await chat(hs({ tier: 'platinum' })));
    await expectRefused(await chat(hs({ sub: undefined })));
    await expectRefused(await chat(hs({ rpm: -1 })));
  });

  it('a group policy from gateway.json grants models, tier and the rate limit (429 like API keys)', async () => {
    const t = hs({ sub: 'batch-embedder', groups: ['users', 'embedders'], models: undefined });
    const embed = () => post(`${gw.url}/v1/embeddings`, JSON.stringify({ model: EMBED, input: 'x' }), bearer(t));
    expect((await chat(t)).status).toBe(404);
    expect((await embed()).status).toBe(200);
    const limited = await embed();
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toMatch(/^\d+$/);
    expect((await limited.json()).error.code).toBe('rate_limit_exceeded');
    // No claim and no policy: no model at all.
    expect((await chat(hs({ sub: 'nobody', models: undefined }))).status).toBe(404);
    expect((await chat(hs({ sub: 'staffer', groups: ['staff'], models: undefined }), EMBED)).status).toBe(200);
  });

  it('API keys keep working beside tokens', async () => {
    expect((await chat(API_KEY, EMBED)).status).toBe(200);
    await expectRefused(await chat('sk-gw-not-a-key-0123456789'));
  });

  it('an unknown kid is refused, then accepted once the provider publishes the rotated key', async () => {
    const fresh = keyPair('RS256', `rotated-${Date.now()}`);
    const t = signed(fresh);
    await expectRefused(await chat(t));
    idp.keys = [fresh, ...idp.keys];
    await eventually(async () => expect((await chat(t)).status).toBe(200), { everyMs: 100 });
  });

  it('while the provider is down the last good key set is kept', async () => {
    const known = idp.keys.find((k) => k.alg === 'ES256')!;
    idp.down = true;
    idp.hitsWhileDown = 0;
    try {
      // An unknown kid asks for a refetch; it fails against the down provider.
      await expectRefused(await chat(signed(keyPair('RS256', 'never-published'))));
      await eventually(() => expect(idp.hitsWhileDown).toBeGreaterThan(0), { everyMs: 100 });
      await eventually(() => expect(gw.errorLogSinceTestStart()).toMatch(/gw: jwks: fetching GW_JWKS_URL \(unknown kid\) failed: .*previous key set is kept/));
      expect((await chat(signed(known))).status).toBe(200);
    } finally {
      idp.down = false;
    }
  });

  it('refusal reasons go to the error log; no token or signature is ever logged', async () => {
    await chat(hs({ exp: 5 }));
    expect(gw.errorLogSinceTestStart()).toMatch(/gw: jwt: refused: expired/);
    const logs = gw.nginx.errorLog() + gw.nginx.accessLog();
    for (const t of tokens) {
      expect(logs.includes(t)).toBe(false);
      expect(logs.includes(t.split('.')[2])).toBe(false);
    }
    expect(logs.includes(SECRET)).toBe(false);
  });
});

describe('JWT with GW_JWKS_FILE, GW_JWT_SECRET_FILE and Keycloak-style claims', () => {
  const jwksFile = join(dir, 'jwks.json');
  const secretFile = join(dir, 'jwt-secret');
  const first = keyPair('ES256', 'file-1');
  writeFileSync(jwksFile, JSON.stringify({ keys: [publicJwk(first)] }));
  writeFileSync(secretFile, `${SECRET}-from-file\n`);
  const kc = useGateway({
    auth: true,
    env: { GW_JWKS_FILE: jwksFile, GW_JWT_SECRET_FILE: secretFile },
    backends: { be_chat: {}, be_embed: {} },
    models: { [CHAT]: { upstream: 'be_chat' }, [EMBED]: { upstream: 'be_embed' } },
    jwt: { claims: { key_id: 'preferred_username', groups: 'realm_access.roles' }, policies: [{ group: 'gw-chat', models: [CHAT], tier: 'high' }] },
  });
  const keycloak = (extra: Record<string, unknown> = {}) => ({ sub: 'f:3b1c:uuid', preferred_username: 'svc-ocr', realm_access: { roles: ['offline_access', 'gw-chat'] }, azp: 'ocr-client', ...extra });
  const call = (t: string, model = CHAT) => post(`${kc.url}/v1/chat/completions`, chatBody(model), bearer(t));

  it('a realm role maps to a gateway.json policy; the key id is preferred_username', async () => {
    expect((await call(mint('ES256', first, keycloak()))).status).toBe(200);
    expect((await call(mint('ES256', first, keycloak()), EMBED)).status).toBe(404);
    expect((await call(mint('ES256', first, keycloak({ realm_access: { roles: ['offline_access'] } })))).status).toBe(404);
    await eventually(() => expect(kc.nginx.accessLog()).toMatch(/"key_id":"jwt:svc-ocr"/));
  });

  it('the HS secret comes from GW_JWT_SECRET_FILE (trailing newline dropped)', async () => {
    expect((await call(mint('HS256', `${SECRET}-from-file`, keycloak()))).status).toBe(200);
    await expectRefused(await call(mint('HS256', SECRET, keycloak())));
  });

  it('a rewritten JWKS file is picked up: the new key verifies, the removed one no longer does', async () => {
    const second = keyPair('RS256', 'file-2');
    writeFileSync(jwksFile, JSON.stringify({ keys: [publicJwk(second)] }));
    await eventually(async () => expect((await call(mint('RS256', second, keycloak()))).status).toBe(200), { everyMs: 100 });
    await expectRefused(await call(mint('ES256', first, keycloak())));
    // A broken file keeps the last good set.
    const mark = kc.errorLogSinceTestStart().length;
    writeFileSync(jwksFile, '{"keys": [');
    // The next sync reads the broken file and says so in the log; only then is the check meaningful.
    await eventually(() => expect(kc.errorLogSinceTestStart().slice(mark)).toContain(`gw: jwks: ${jwksFile}: `), { everyMs: 100 });
    expect((await call(mint('RS256', second, keycloak()))).status).toBe(200);
  });
});

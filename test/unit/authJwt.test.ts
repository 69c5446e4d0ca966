/**
 * gw.authJwt with fakes for r and ngx, in Node. Node's WebCrypto settles its Promises on a later
 * turn (njs settles them inside the js_set call), which makes the fail-closed rule observable: the
 * verdict must read "401" until the verification chain has accepted.
 */
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { JWT_DEFAULTS } from '../../njs/src/core/jwt';

vi.mock('gw-routes.js', () => ({ default: () => ({ models: {}, aliases: {}, upstreams: {}, jwt: JWT_DEFAULTS }) }));

const SECRET = 'unit-test-secret-0123456789-abcdefghijklmnop';
const b64u = (s: string | Buffer) => Buffer.from(s).toString('base64url');
function token(claims: Record<string, unknown>): string {
  const input = `${b64u(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64u(JSON.stringify(claims))}`;
  return `${input}.${createHmac('sha256', SECRET).update(input).digest('base64url')}`;
}

type AuthJwt = (r: unknown) => string;
// A computed path: the handler's njs typings are not part of the Node test project (test/tsconfig.json).
const HANDLER = '../../njs/src/handlers/authJwt';
async function load(): Promise<{ authJwt: AuthJwt }> {
  return (await import(/* @vite-ignore */ HANDLER)) as { authJwt: AuthJwt };
}

function fakeDict(): Record<string, unknown> {
  const m: Record<string, unknown> = {};
  return {
    get: (k: string) => m[k], set: (k: string, v: unknown) => { m[k] = v; }, delete: (k: string) => { delete m[k]; },
    incr: (k: string, d: number, init = 0) => { m[k] = ((m[k] as number) ?? init) + d; return m[k]; },
  };
}

function fakeRequest(authorization: string) {
  const variables: Record<string, string> = {};
  const log: string[] = [];
  return { headersIn: { Authorization: authorization }, variables, log: (m: string) => log.push(m), warn: (m: string) => log.push(m), error: (m: string) => log.push(m), lines: log };
}

beforeAll(() => {
  (globalThis as Record<string, unknown>).ngx = { shared: { gw_jwks: fakeDict(), gw_jwt_verified: fakeDict(), gw_rate: fakeDict() } };
  process.env.GW_JWT_SECRET = SECRET;
});
afterAll(() => {
  delete (globalThis as Record<string, unknown>).ngx;
  delete process.env.GW_JWT_SECRET;
});

describe('gw.authJwt (fakes)', () => {
  it('reads 401 until the signature check has settled, then ok', async () => {
    const { authJwt } = await load();
    const r = fakeRequest(`Bearer ${token({ sub: 'a', models: ['m'], exp: Math.floor(Date.now() / 1000) + 60 })}`);
    const v = authJwt(r);
    expect(String(v)).toBe('401');
    expect(r.variables.gw_key_id).toBeUndefined();
    await new Promise((ok) => setTimeout(ok, 50));
    expect(String(v)).toBe('ok');
    expect(r.variables).toMatchObject({ gw_key_id: 'jwt:a', gw_key_models: '["m"]', gw_tier: 'normal' });
  });

  it('a bad signature stays 401 with the one invalid_api_key body; the reason is logged without the token', async () => {
    const { authJwt } = await load();
    const good = token({ sub: 'a', exp: Math.floor(Date.now() / 1000) + 60 });
    const bad = good.slice(0, good.lastIndexOf('.') + 1) + b64u(Buffer.alloc(32, 1));
    const r = fakeRequest(`Bearer ${bad}`);
    const v = authJwt(r);
    await new Promise((ok) => setTimeout(ok, 50));
    expect(String(v)).toBe('401');
    expect(JSON.parse(r.variables.gw_auth_error).error.code).toBe('invalid_api_key');
    expect(r.lines.join('\n')).toMatch(/refused: bad signature \(HS256\)/);
    expect(r.lines.join('\n')).not.toContain(bad.split('.')[2]);
  });

  it('not a token, or no token source: "none" (the API-key path takes it)', async () => {
    const { authJwt } = await load();
    expect(authJwt(fakeRequest('Bearer sk-gw-abc'))).toBe('none');
    delete process.env.GW_JWT_SECRET;
    try {
      expect(authJwt(fakeRequest(`Bearer ${token({ sub: 'a' })}`))).toBe('none');
    } finally {
      process.env.GW_JWT_SECRET = SECRET;
    }
  });
});

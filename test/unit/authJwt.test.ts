/**
 * gw.jwt.authJwt with fakes for r and ngx, in Node. Node's WebCrypto settles its Promises on a later
 * turn (njs settles them inside the js_set call), which makes the fail-closed rule observable: the
 * verdict must read "401" until the verification chain has accepted.
 */
import { describe, expect, it, vi } from 'vitest';
import { JWT_DEFAULTS } from '../../njs/src/core/jwt';
import { fakeRequest, hsToken, loadAuthJwt, SECRET, useJwtGlobals } from '../support/jwtFakes';

vi.mock('gw-routes.js', () => ({ default: () => ({ models: {}, aliases: {}, upstreams: {}, jwt: JWT_DEFAULTS }) }));

function token(claims: Record<string, unknown>): string {
  return hsToken({ alg: 'HS256', typ: 'JWT' }, claims);
}
const load = loadAuthJwt;

useJwtGlobals();

describe('gw.jwt.authJwt (fakes)', () => {
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
    const bad = good.slice(0, good.lastIndexOf('.') + 1) + Buffer.alloc(32, 1).toString('base64url');
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

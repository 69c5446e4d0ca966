/**
 * Fakes for running the JWT handler (njs/src/handlers/authJwt.ts) in Node: HS256 tokens, shared
 * dicts and a request, and the `ngx` global plus the secret the handler reads. Each test file still
 * mocks `gw-routes.js` itself (vi.mock is hoisted per file).
 */
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';

export const SECRET = 'unit-test-secret-0123456789-abcdefghijklmnop';

const b64u = (s: string | Buffer) => Buffer.from(s).toString('base64url');

/** An HS256 token signed with SECRET. */
export function hsToken(header: Record<string, unknown>, claims: Record<string, unknown>): string {
  const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(claims))}`;
  return `${input}.${createHmac('sha256', SECRET).update(input).digest('base64url')}`;
}

export function fakeDict(): Record<string, unknown> {
  const m: Record<string, unknown> = {};
  return {
    get: (k: string) => m[k], set: (k: string, v: unknown) => { m[k] = v; }, add: (k: string, v: unknown) => { if (k in m) return false; m[k] = v; return true; },
    delete: (k: string) => { delete m[k]; }, incr: (k: string, d: number, init = 0) => { m[k] = ((m[k] as number) ?? init) + d; return m[k]; },
  };
}

export function fakeRequest(authorization: string) {
  // The js_var defaults nginx/gateway-http.conf declares for what gw.jwt.authJwt writes.
  const variables: Record<string, string> = { gw_tier: 'normal' };
  const log: string[] = [];
  return { headersIn: { Authorization: authorization }, variables, log: (m: string) => log.push(m), warn: (m: string) => log.push(m), error: (m: string) => log.push(m), lines: log };
}

export type AuthJwt = (r: unknown) => string;
// A computed path: the handler's njs typings are not part of the Node test project (test/tsconfig.json).
const HANDLER = '../../njs/src/handlers/authJwt';
export async function loadAuthJwt(): Promise<{ authJwt: AuthJwt }> {
  return (await import(/* @vite-ignore */ HANDLER)) as { authJwt: AuthJwt };
}

/** The `ngx` global with the JWT and rate zones, and GW_JWT_SECRET, for the file's tests. */
export function useJwtGlobals(): void {
  beforeAll(() => {
    (globalThis as Record<string, unknown>).ngx = { shared: { gw_jwks: fakeDict(), gw_jwt_verified: fakeDict(), gw_rate: fakeDict() } };
    process.env.GW_JWT_SECRET = SECRET;
  });
  afterAll(() => {
    delete (globalThis as Record<string, unknown>).ngx;
    delete process.env.GW_JWT_SECRET;
  });
}

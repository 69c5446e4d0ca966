/**
 * The header of a token is the client's text, read before any signature check: an `alg` or `kid`
 * holding CR/LF must not end the error-log line and forge the next one (a fake [alert], or a line
 * a log pipeline trusts). gw.jwt.authJwt with fakes for r and ngx, as in authJwt.test.ts.
 */
import { describe, expect, it, vi } from 'vitest';
import { JWT_DEFAULTS, parseJwt } from '../../njs/src/core/jwt';
import { hsToken, loadAuthJwt, useJwtGlobals } from '../support/jwtFakes';

vi.mock('gw-routes.js', () => ({ default: () => ({ models: {}, aliases: {}, upstreams: {}, jwt: JWT_DEFAULTS }) }));

function token(header: Record<string, unknown>): string {
  return hsToken(header, { sub: 'a', models: '*', exp: Math.floor(Date.now() / 1000) + 60 });
}
const FORGED = 'x\n2026/12/01 10:00:00 [alert] 1#1: forged\r\nmore\u0000';

useJwtGlobals();

describe('JWT refusal reasons cannot forge log lines', () => {
  it('an alg with CR/LF is quoted in the reason', () => {
    const p = parseJwt(token({ alg: FORGED }), JWT_DEFAULTS);
    expect(p.ok).toBe(false);
    if (p.ok) return;
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the test looks for exactly these bytes
    expect(p.reason).not.toMatch(/[\r\n\u0000]/);
    expect(p.reason).toContain('is not allowed');
  });

  it('a kid with CR/LF is quoted in the logged reason', async () => {
    const { authJwt } = await loadAuthJwt();
    const lines: string[] = [];
    const r = { headersIn: { Authorization: `Bearer ${token({ alg: 'RS256', kid: FORGED })}` }, variables: {} as Record<string, string>,
      log: (m: string) => lines.push(m), warn: (m: string) => lines.push(m), error: (m: string) => lines.push(m) };
    const v = authJwt(r);
    await new Promise((ok) => setTimeout(ok, 20));
    expect(String(v)).toBe('401');
    expect(lines.join('|')).toMatch(/with kid "x\\n2026/);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the test looks for exactly these bytes
    for (const l of lines) expect(l).not.toMatch(/[\r\n\u0000]/);
  });
});

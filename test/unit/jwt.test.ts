import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { candidateKeys, cleanJwks, jwksDue } from '../../njs/src/core/jwks';
import {
  ALGS, b64urlDecode, checkClaims, claimAt, JWT_DEFAULTS, JwtConfig, jwtCandidate, parseJwt, policyFromClaims, timingSafeEqual,
} from '../../njs/src/core/jwt';
import { normalizeJwtConfig } from '../../scripts/jwt-config.mjs';
import { b64u, signJwt } from '../../tools/jwt';

const cfg = (over: Partial<JwtConfig> = {}): JwtConfig => ({ ...JWT_DEFAULTS, ...over });
const tok = (header: object, claims: object, sig = 'c2ln') => `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(claims))}.${sig}`;

describe('base64url and the JWT shape', () => {
  it('decodes exactly what Node encodes, for any bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (a) => {
      const s = Buffer.from(a).toString('base64url');
      expect(b64urlDecode(s)!.equals(Buffer.from(a))).toBe(true);
    }));
  });

  it('refuses padding, standard-base64 characters and impossible lengths', () => {
    for (const s of ['YQ==', 'a+b/', 'ab cd', 'a', 'abcde']) expect(b64urlDecode(s)).toBeNull();
  });

  it('a token is a Bearer credential with three base64url segments starting like JSON; the rest stays an API key', () => {
    expect(jwtCandidate('Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2ln')).toBe('eyJhbGciOiJIUzI1NiJ9.e30.c2ln');
    expect(jwtCandidate('bearer  eyJh.e30.  ')).toBe('eyJh.e30.');
    for (const h of [undefined, '', 'Bearer sk-gw-abc', 'Bearer eyJh.e30', 'Bearer eyJh.e30.x.y', 'Basic eyJh.e30.x', 'Bearer eyJh.e3=.x', 'Bearer abc.def.ghi']) {
      expect(jwtCandidate(h)).toBeNull();
    }
  });
});

describe('parseJwt', () => {
  it('returns alg, kid, claims, the signing input and the signature bytes', () => {
    const t = tok({ alg: 'RS256', kid: 'k1', typ: 'JWT' }, { sub: 'a' }, 'AQID');
    const p = parseJwt(t, cfg());
    expect(p).toMatchObject({ ok: true, jwt: { alg: 'RS256', kid: 'k1', claims: { sub: 'a' }, signingInput: t.slice(0, t.lastIndexOf('.')) } });
    if (p.ok) expect([...Buffer.from(p.jwt.signature, 'base64url')]).toEqual([1, 2, 3]);
  });

  it.each([
    ['alg none', tok({ alg: 'none' }, {}), /not allowed/],
    ['alg missing', tok({ typ: 'JWT' }, {}), /no alg/],
    ['alg not a string', tok({ alg: ['HS256'] }, {}), /no alg/],
    ['alg lowercase', tok({ alg: 'hs256' }, {}), /not allowed/],
    ['alg inherited from Object.prototype', tok({ alg: 'constructor' }, {}), /not allowed/],
    ['crit', tok({ alg: 'HS256', crit: ['b64'] }, {}), /crit/],
    ['typ other than JWT', tok({ alg: 'HS256', typ: 'JWE' }, {}), /typ/],
    ['kid not a string', tok({ alg: 'HS256', kid: 7 }, {}), /kid/],
    ['payload not JSON', `${b64u('{"alg":"HS256"}')}.${b64u('nope')}.c2ln`, /payload/],
    ['payload an array', `${b64u('{"alg":"HS256"}')}.${b64u('[1]')}.c2ln`, /payload/],
    ['empty signature', tok({ alg: 'HS256' }, {}, ''), /signature/],
    ['header not JSON', `${b64u('x')}.e30.c2ln`, /header/],
    ['four segments', `${tok({ alg: 'HS256' }, {})}.x`, /three/],
  ])('refuses %s', (_n, t, reason) => {
    const p = parseJwt(t, cfg());
    expect(p.ok).toBe(false);
    if (!p.ok) expect(p.reason).toMatch(reason);
  });

  it('typ JWT, at+jwt and application/at+jwt are accepted', () => {
    for (const typ of ['JWT', 'jwt', 'at+jwt', 'application/at+jwt']) expect(parseJwt(tok({ alg: 'HS256', typ }, {}), cfg()).ok).toBe(true);
  });

  it('size limits on the token and on the header', () => {
    expect(parseJwt(tok({ alg: 'HS256' }, { p: 'x'.repeat(400) }), cfg({ max_token_bytes: 300 }))).toMatchObject({ ok: false, reason: expect.stringMatching(/max_token_bytes/) });
    expect(parseJwt(tok({ alg: 'HS256', p: 'x'.repeat(200) }, {}), cfg({ max_header_bytes: 100 }))).toMatchObject({ ok: false, reason: expect.stringMatching(/max_header_bytes/) });
  });

  it('jwt.algorithms narrows the allow-list', () => {
    expect(parseJwt(tok({ alg: 'HS256' }, {}), cfg({ algorithms: ['RS256'] })).ok).toBe(false);
    expect(parseJwt(tok({ alg: 'RS256' }, {}), cfg({ algorithms: ['RS256'] })).ok).toBe(true);
  });

  it('never throws, whatever the input', () => {
    fc.assert(fc.property(fc.string({ maxLength: 300 }), fc.string({ maxLength: 100 }), fc.string({ maxLength: 50 }), (a, b, c) => {
      for (const t of [`${a}.${b}.${c}`, `${b64u(a)}.${b64u(b)}.${b64u(c)}`, a]) {
        const p = parseJwt(t, cfg());
        expect(typeof p.ok).toBe('boolean');
      }
    }));
  });
});

describe('checkClaims: time, issuer, audience', () => {
  const now = 1_800_000_000;
  const c = cfg({ leeway_sec: 30 });
  it.each([
    [{ exp: now + 1 }, ''],
    [{ exp: now - 29 }, ''],
    [{ exp: now - 30 }, 'expired'],
    [{ exp: 'tomorrow' }, 'exp is not a number'],
    [{}, 'no exp claim'],
    [{ exp: now + 60, nbf: now + 30 }, ''],
    [{ exp: now + 60, nbf: now + 31 }, 'not valid yet (nbf)'],
    [{ exp: now + 60, iat: now + 31 }, 'issued in the future (iat)'],
    [{ exp: now + 60, iat: now - 1000 }, ''],
  ])('%j → %j', (claims, reason) => {
    expect(checkClaims(claims, c, now)).toBe(reason);
  });

  it('exp can be made optional', () => {
    expect(checkClaims({}, cfg({ require_exp: false }), now)).toBe('');
  });

  it('iss must equal jwt.issuer; aud must contain jwt.audience (string or list)', () => {
    const ia = cfg({ issuer: 'https://idp/', audience: 'gw' });
    expect(checkClaims({ exp: now + 9, iss: 'https://idp/', aud: 'gw' }, ia, now)).toBe('');
    expect(checkClaims({ exp: now + 9, iss: 'https://idp/', aud: ['x', 'gw'] }, ia, now)).toBe('');
    expect(checkClaims({ exp: now + 9, iss: 'https://idp', aud: 'gw' }, ia, now)).toMatch(/iss/);
    expect(checkClaims({ exp: now + 9, iss: 'https://idp/', aud: 'gwx' }, ia, now)).toMatch(/aud/);
    expect(checkClaims({ exp: now + 9, iss: 'https://idp/' }, ia, now)).toMatch(/aud/);
    expect(checkClaims({ exp: now + 9, iss: 'https://idp/', aud: [['gw']] }, ia, now)).toMatch(/aud/);
  });
});

describe('claims → the per-client policy', () => {
  const policies = [
    { group: 'embedders', models: ['bge'], tier: 'low' as const, rpm: 5 },
    { group: 'staff', models: '*' as const, tier: 'high' as const },
  ];
  it('direct claims', () => {
    expect(policyFromClaims({ sub: 'a', models: ['m1'], tier: 'high', rpm: 10, burst: 2 }, cfg())).toEqual({ ok: true, policy: { id: 'jwt:a', models: ['m1'], tier: 'high', rpm: 10, burst: 2 } });
    expect(policyFromClaims({ sub: 'a', models: '*' }, cfg())).toMatchObject({ policy: { models: '*' } });
  });

  it('no claim and no policy: no model, tier normal, no rate limit', () => {
    expect(policyFromClaims({ sub: 'a' }, cfg())).toEqual({ ok: true, policy: { id: 'jwt:a', models: [], tier: 'normal', rpm: 0, burst: 0 } });
  });

  it('the first listed policy whose group the token has is the base; token claims override it', () => {
    expect(policyFromClaims({ sub: 'a', groups: ['staff', 'embedders'] }, cfg({ policies }))).toMatchObject({ policy: { models: ['bge'], tier: 'low', rpm: 5 } });
    expect(policyFromClaims({ sub: 'a', groups: 'staff' }, cfg({ policies }))).toMatchObject({ policy: { models: '*', tier: 'high', rpm: 0 } });
    expect(policyFromClaims({ sub: 'a', groups: ['embedders'], rpm: 50 }, cfg({ policies }))).toMatchObject({ policy: { models: ['bge'], rpm: 50 } });
    expect(policyFromClaims({ sub: 'a', groups: ['other'] }, cfg({ policies }))).toMatchObject({ policy: { models: [] } });
  });

  it('claim names are configurable and may walk into objects (Keycloak, Auth0 namespaced claims)', () => {
    const kc = cfg({ policies, claims: { ...JWT_DEFAULTS.claims, key_id: 'preferred_username', groups: 'realm_access.roles', models: 'https://gw.example/models' } });
    const claims = { sub: 'f:uuid', preferred_username: 'svc-ocr', realm_access: { roles: ['offline_access', 'staff'] }, 'https://gw.example/models': ['ocr'] };
    expect(policyFromClaims(claims, kc)).toEqual({ ok: true, policy: { id: 'jwt:svc-ocr', models: ['ocr'], tier: 'high', rpm: 0, burst: 0 } });
    expect(claimAt({ a: { b: { c: 1 } } }, 'a.b.c')).toBe(1);
    expect(claimAt({ a: [1] }, 'a.0')).toBeUndefined();
    expect(claimAt({}, 'constructor')).toBeUndefined();
    expect(claimAt({}, '__proto__.x')).toBeUndefined();
  });

  it.each([
    [{}, /key id/],
    [{ sub: '' }, /key id/],
    [{ sub: 'has space' }, /key id/],
    [{ sub: 'x'.repeat(129) }, /key id/],
    [{ sub: 'a', models: 'm1' }, /models/],
    [{ sub: 'a', models: [1] }, /models/],
    [{ sub: 'a', models: [''] }, /models/],
    [{ sub: 'a', tier: 'gold' }, /tier/],
    [{ sub: 'a', rpm: 1.5 }, /rpm/],
    [{ sub: 'a', burst: -1 }, /burst/],
  ])('malformed %j refuses the token', (claims, reason) => {
    const p = policyFromClaims(claims, cfg());
    expect(p.ok).toBe(false);
    if (!p.ok) expect(p.reason).toMatch(reason);
  });
});

describe('JWKS keys and the alg ↔ key type allow-list', () => {
  const rsa = { kty: 'RSA', kid: 'r1', n: 'AQAB', e: 'AQAB' };
  const rsaPinned = { kty: 'RSA', kid: 'r2', alg: 'PS256', n: 'AQAB', e: 'AQAB' };
  const ec = { kty: 'EC', kid: 'e1', crv: 'P-256', x: 'AA', y: 'AA' };
  const ec384 = { kty: 'EC', kid: 'e2', crv: 'P-384', x: 'AA', y: 'AA' };

  it('keeps RSA and EC public signing keys only', () => {
    const c = cleanJwks({ keys: [rsa, ec, { kty: 'oct', k: 'c2VjcmV0' }, { ...rsa, use: 'enc' }, { ...ec, key_ops: ['sign'] }, { kty: 'RSA' }, null, { ...rsa, d: 'private' }] });
    expect(c.keys.map((k) => k.kid)).toEqual(['r1', 'e1', 'r1']);
    expect(c.keys[2]).not.toHaveProperty('d');
    expect(c.dropped).toHaveLength(5);
    expect(cleanJwks({ nope: 1 }).keys).toEqual([]);
  });

  it('an HS alg never gets a JWKS key; RS/PS only RSA keys; ES only EC keys of its curve', () => {
    const keys = cleanJwks({ keys: [rsa, rsaPinned, ec, ec384] }).keys;
    for (const hs of ['HS256', 'HS384', 'HS512', 'none']) expect(candidateKeys(keys, hs, '')).toEqual([]);
    expect(candidateKeys(keys, 'RS256', '').map((k) => k.kid)).toEqual(['r1']);
    expect(candidateKeys(keys, 'PS256', '').map((k) => k.kid)).toEqual(['r1', 'r2']);
    expect(candidateKeys(keys, 'ES256', '').map((k) => k.kid)).toEqual(['e1']);
    expect(candidateKeys(keys, 'ES384', '').map((k) => k.kid)).toEqual(['e2']);
    expect(candidateKeys(keys, 'RS256', 'e1')).toEqual([]);
    expect(candidateKeys(keys, 'RS256', 'nope')).toEqual([]);
    expect(candidateKeys(keys, 'ES256', 'e1').map((k) => k.kid)).toEqual(['e1']);
  });

  it('at most 4 candidates for a kid-less token', () => {
    const many = cleanJwks({ keys: Array.from({ length: 10 }, (_, i) => ({ ...rsa, kid: `r${i}` })) }).keys;
    expect(candidateKeys(many, 'RS256', '')).toHaveLength(4);
  });

  it('every alg has a key kind, a hash and a WebCrypto name that match', () => {
    for (const [alg, s] of Object.entries(ALGS)) {
      expect(s.hash).toBe(`SHA-${alg.slice(2)}`);
      expect(s.kind).toBe(alg.startsWith('HS') ? 'secret' : alg.startsWith('ES') ? 'EC' : 'RSA');
    }
  });
});

describe('jwksDue: when gw.jwt.jwksRefresh fetches', () => {
  const c = { jwks_refresh_sec: 300, jwks_retry_sec: 30 };
  const base = { lastGoodMs: 1_000_000, lastTryMs: 1_000_000, miss: false, hasKeys: true };
  it.each([
    [{ ...base, hasKeys: false, lastTryMs: 0, lastGoodMs: 0 }, 1_000_000, 'initial'],
    [{ ...base, hasKeys: false }, 1_000_000 + 29_999, ''],
    [{ ...base, hasKeys: false }, 1_000_000 + 30_000, 'initial'],
    [{ ...base, miss: true }, 1_000_000 + 10_000, ''],
    [{ ...base, miss: true }, 1_000_000 + 30_000, 'unknown kid'],
    [base, 1_000_000 + 299_999, ''],
    [base, 1_000_000 + 300_000, 'refresh'],
  ])('%j at %d → %j', (st, now, why) => {
    expect(jwksDue(st, c, now)).toBe(why);
  });

  it('unknown kids never cause more than one fetch per jwks_retry', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 2000 }), { minLength: 1, maxLength: 200 }), (steps) => {
      let now = 5_000_000;
      const st = { lastGoodMs: now, lastTryMs: now, miss: true, hasKeys: true };
      const fetches: number[] = [];
      for (const s of steps) {
        now += s;
        st.miss = true;
        if (jwksDue(st, c, now) !== '') { fetches.push(now); st.lastTryMs = now; st.miss = false; }
      }
      for (let i = 1; i < fetches.length; i++) expect(fetches[i] - fetches[i - 1]).toBeGreaterThanOrEqual(30_000);
    }));
  });
});

describe('timingSafeEqual', () => {
  it('agrees with Buffer.equals', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ maxLength: 64 }), (a, b) => {
      expect(timingSafeEqual(Buffer.from(a), Buffer.from(b))).toBe(Buffer.from(a).equals(Buffer.from(b)));
    }));
  });
});

describe('gateway.json "jwt" (scripts/jwt-config.mjs)', () => {
  it('absent: the defaults core/jwt.ts uses', () => {
    expect(normalizeJwtConfig(undefined)).toEqual(JWT_DEFAULTS);
  });

  it('reads durations, claim names and policies', () => {
    const j = normalizeJwtConfig({ issuer: 'https://idp/', audience: 'gw', leeway: '10s', jwks_refresh: '10m', jwks_retry: '5s',
      claims: { groups: 'realm_access.roles' }, policies: [{ group: 'ops', models: '*', tier: 'high', rpm: 60 }] });
    expect(j).toMatchObject({ leeway_sec: 10, jwks_refresh_sec: 600, jwks_retry_sec: 5, claims: { groups: 'realm_access.roles', key_id: 'sub' },
      policies: [{ group: 'ops', models: '*', tier: 'high', rpm: 60 }] });
  });

  it.each([
    [{ leeway: '1h' }, /leeway/],
    [{ algorithms: ['none'] }, /algorithms/],
    [{ claims: { user: 'sub' } }, /claim role/],
    [{ policies: [{ models: '*' }] }, /group/],
    [{ policies: [{ group: 'a', tier: 'gold' }] }, /tier/],
    [{ policies: { a: {} } }, /policies/],
    [{ isuer: 'x' }, /unknown field "isuer"/],
    [{ max_token_bytes: 10 }, /max_token_bytes/],
  ])('refuses %j naming the fix', (raw, msg) => {
    expect(() => normalizeJwtConfig(raw)).toThrow(msg);
  });
});

it('the test minting helper and the parser agree on every alg name', () => {
  const t = signJwt({ alg: 'HS512', typ: 'JWT' }, { sub: 'a' }, 'k'.repeat(64));
  expect(parseJwt(t, cfg())).toMatchObject({ ok: true, jwt: { alg: 'HS512' } });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyUpdate, bearerKey, currentRecord, decodeRecord, encodeRecord, headerKey, hotFields, keyActive, keyRefusal, oldHotFields, plainBearer, wellFormedKey, looseDirsProblem, looseFileProblem, newRecord, parentDirs, parseKeysFile, presentedKey, publicView, validateKeyInput, validKeyId } from '../../njs/src/core/keys';
import { checkRate, Counter, PREV, UNSET } from '../../njs/src/core/rateLimit';

/** This window's count n of a minute counter's value (core/rateLimit.ts). */
const windowCount = (v: number) => (v >= 0 ? v % PREV : v - UNSET);

function fakeCounter(): Counter & { data: Record<string, number> } {
  const data: Record<string, number> = {};
  return { data, incr: (k, d, init) => (data[k] = (data[k] ?? init ?? 0) + d), get: (k) => data[k] };
}

describe('presentedKey', () => {
  it('reads Bearer, api-key, x-api-key in that order', () => {
    expect(presentedKey('Bearer abc', 'x', 'y')).toBe('abc');
    expect(presentedKey('bearer   abc  ', undefined, undefined)).toBe('abc');
    expect(presentedKey(undefined, ' k1 ', 'y')).toBe('k1');
    expect(presentedKey(undefined, undefined, 'k2')).toBe('k2');
    expect(presentedKey(undefined, undefined, undefined)).toBe('');
  });
  it('flags malformed values as null', () => {
    expect(presentedKey('Basic abc', undefined, undefined)).toBeNull();
    expect(presentedKey('Bearer a b', undefined, undefined)).toBeNull();
    expect(presentedKey('Bearer ' + 'a'.repeat(600), undefined, undefined)).toBeNull();
    expect(presentedKey(undefined, 'é', undefined)).toBeNull();
  });
});

/** The header parsing before it was split for the request path: the reference the new one must equal. */
function referenceKey(authorization: string | undefined, apiKey: string | undefined, xApiKey: string | undefined): string | null {
  let v = '';
  if (authorization !== undefined && authorization !== '') {
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
    if (!m) return null;
    v = m[1];
  } else if (apiKey !== undefined && apiKey !== '') {
    v = apiKey.trim();
  } else if (xApiKey !== undefined && xApiKey !== '') {
    v = xApiKey.trim();
  }
  if (v.length > 512 || /[^\x21-\x7e]/.test(v)) return null;
  return v;
}

describe('bearerKey / headerKey: the same keys as the one-regex parser', () => {
  // Pieces that sit on the edges of every rule: case, blanks, non-ASCII case variants, controls, length.
  const piece = fc.constantFrom('Bearer', 'bearer', 'BEARER', 'BeArEr', 'Basic', ' ', '\t', '  ', 'eyJ', 'EYJ', 'eyj', 'sk-gw-abc', 'x',
    '\u017f', '\u212a', 'é', '\u00a0', '\u2003', '\x7f', '\x01', '\n', '\r', 'a'.repeat(300), '"', '~', '!', '');
  const header = fc.oneof(fc.constant(undefined), fc.array(piece, { maxLength: 6 }).map((p) => p.join('')), fc.string({ maxLength: 20 }));
  it('agrees on any three header values', () => {
    fc.assert(fc.property(header, header, header, (a, k, x) => {
      const want = referenceKey(a, k, x);
      expect(presentedKey(a, k, x)).toBe(want);
      if (a !== undefined && a !== '') {
        expect(bearerKey(a)).toBe(want);
      } else {
        expect(headerKey(k !== undefined && k !== '' ? k : x)).toBe(want);
      }
    }), { numRuns: 5000 });
  });
  it('the request path\'s guess (plainBearer), when well-formed, is the key the full parse finds, and never a JWT look-alike', () => {
    fc.assert(fc.property(header, (a) => {
      if (a === undefined || a === '') return;
      const t = plainBearer(a);
      if (t === null || !wellFormedKey(t)) return;
      expect(bearerKey(a)).toBe(t);
      expect(/^Bearer[ \t]+eyJ/i.test(a)).toBe(false);
    }), { numRuns: 5000 });
    // Keys the admin API makes (handlers/admin.ts: "sk-gw-" + 24 random bytes, base64url) always are.
    fc.assert(fc.property(fc.uint8Array({ minLength: 24, maxLength: 24 }), (b) => {
      const key = 'sk-gw-' + Buffer.from(b).toString('base64url');
      expect(plainBearer('Bearer ' + key)).toBe(key);
      expect(wellFormedKey(key)).toBe(true);
      expect(bearerKey('Bearer ' + key)).toBe(key);
    }), { numRuns: 500 });
    expect(plainBearer('Bearer eyJhbGciOi.x.y')).toBeNull();
    expect(plainBearer('Bearer Eyj')).toBeNull();
    expect(plainBearer('bearer sk-1')).toBeNull();
    expect(wellFormedKey('')).toBe(false);
    expect(wellFormedKey('a b')).toBe(false);
    expect(wellFormedKey('a'.repeat(513))).toBe(false);
  });
  it('plainBearer answers what its startsWith/charCodeAt spelling answered, for any header value', () => {
    const oldSpelling = (a: string) => (a.startsWith('Bearer ') && (a.charCodeAt(7) | 32) !== 101 ? a.slice(7) : null);
    const value = fc.oneof(fc.string({ maxLength: 12 }), fc.string({ unit: 'binary', maxLength: 12 }),
      fc.tuple(fc.constantFrom('Bearer ', 'Bearer', 'bearer ', 'Bearer\t', 'BEARER '), fc.constantFrom('', 'e', 'E', '\u0165', '\ud800', 'f'),
        fc.string({ unit: 'binary', maxLength: 8 })).map((p) => p.join('')));
    fc.assert(fc.property(value, (a) => { expect(plainBearer(a)).toBe(oldSpelling(a)); }), { numRuns: 20000 });
    for (const a of ['Bearer ', 'Bearer e', 'Bearer E', 'Bearer x', 'Bearer', '']) expect(plainBearer(a)).toBe(oldSpelling(a));
  });
  it('refuses non-ASCII case variants of ASCII letters inside a bearer key', () => {
    expect(bearerKey('Bearer \u017fk-1')).toBeNull();
    expect(bearerKey('Bearer \u212aey')).toBeNull();
    expect(bearerKey('bEaReR\t sk-1 \t')).toBe('sk-1');
    expect(bearerKey('Bearer ' + 'a'.repeat(512))).toBe('a'.repeat(512));
    expect(bearerKey('Bearer ' + 'a'.repeat(513))).toBeNull();
  });
});

describe('the request path decision (keyRefusal, keyActive over the stored fields)', () => {
  const rec = newRecord({ models: '*' }, 'k', 'h', 100, 'admin');
  const state = (k: typeof rec) => hotFields(encodeRecord(k))[1];
  it('decides missing, invalid, expired, disabled, ok', () => {
    expect(keyRefusal('')).toMatchObject({ status: 401, code: 'missing_api_key' });
    expect(JSON.parse(keyRefusal(null).body).error).toMatchObject({ code: 'invalid_api_key', message: expect.stringMatching(/malformed/) });
    expect(JSON.parse(keyRefusal('x').body).error).toMatchObject({ code: 'invalid_api_key', message: expect.stringMatching(/Incorrect API key/) });
    expect(keyActive(state({ ...rec, disabled: true }), 0)).toBe(false);
    expect(keyActive(state({ ...rec, disabled: true, expires_at: 4102444800 }), 0)).toBe(false);
    expect(keyActive(state({ ...rec, expires_at: 50 }), 50_000)).toBe(false);
    expect(keyActive(state({ ...rec, expires_at: 50 }), 49_999)).toBe(true);
    expect(keyActive(state({ ...rec, expires_at: 51 }), 50_999)).toBe(true);
    expect(keyActive(state(rec), 4102444800_000)).toBe(true);
    for (const junk of ['', 'x', 'NaN', '-1', ' ']) expect(keyActive(junk, 0), junk).toBe(false);
  });
  it('keyActive is the old rule "not disabled, expires_at 0 or after floor(now/1000)" for any expiry and clock', () => {
    fc.assert(fc.property(fc.boolean(), fc.integer({ min: 0, max: 4102444800 }), fc.integer({ min: 0, max: 4102444800_999 }), (disabled, exp, nowMs) => {
      const old = !disabled && !(exp > 0 && exp <= Math.floor(nowMs / 1000));
      expect(keyActive(state({ ...rec, disabled, expires_at: exp }), nowMs)).toBe(old);
    }), { numRuns: 2000 });
  });
  it('never shows the hash', () => {
    expect(JSON.stringify(publicView(rec))).not.toContain('"hash"');
  });
});

describe('encodeRecord / decodeRecord / hotFields: the stored layout', () => {
  const name = fc.string({ minLength: 1, maxLength: 12, unit: fc.constantFrom('a', '\t', '\n', '{', '"', '\\', 'é', '*', '[', ',') });
  const record = fc.record({
    hash: fc.stringMatching(/^[0-9a-f]{64}$/), label: name, models: fc.oneof(fc.constant('*' as const), fc.array(name, { maxLength: 4 })),
    rpm: fc.integer({ min: 0, max: 1000000 }), burst: fc.integer({ min: 0, max: 100000 }), tier: fc.constantFrom('high', 'normal', 'low'),
    expires_at: fc.integer({ min: 0, max: 4102444800 }), disabled: fc.boolean(), created_at: fc.integer({ min: 0, max: 4102444800 }),
  });
  it('round-trips any record, and the fields are the record\'s, in both layouts', () => {
    fc.assert(fc.property(record, (v) => {
      const k = { ...newRecord(v, 'id-1', v.hash, v.created_at, v.created_at % 2 ? 'admin' : 'file'), ...v } as ReturnType<typeof newRecord>;
      const fields = [k.hash, k.disabled ? 'd' : String(k.expires_at), String(k.rpm), String(k.burst), k.tier, k.models === '*' ? '*' : JSON.stringify(k.models), k.source];
      expect(decodeRecord(encodeRecord(k))).toEqual(k);
      expect(hotFields(encodeRecord(k))).toEqual(fields);
      expect(oldHotFields(encodeRecord(k))).toBeNull();
      // A value stored before the layout (the JSON alone) reads the same.
      expect(decodeRecord(JSON.stringify(k))).toEqual(k);
      expect(oldHotFields(JSON.stringify(k))).toEqual(fields);
    }), { numRuns: 500 });
  });
});

describe('validateKeyInput', () => {
  it('accepts a full create and computes expires_in', () => {
    const v = validateKeyInput({ id: 'a.b-c_1', label: 'x', models: ['m'], rpm: 60, burst: 5, tier: 'low', expires_in: 10 }, false, 1000);
    expect(v).toEqual({ ok: true, value: { id: 'a.b-c_1', label: 'x', models: ['m'], rpm: 60, burst: 5, tier: 'low', expires_at: 1010 } });
  });
  const bad: unknown[] = [null, [], 'x', { id: 'a b' }, { models: [1] }, { models: 'm' }, { rpm: 1.5 }, { rpm: '1' }, { burst: -1 },
    { tier: 'x' }, { expires_at: 1, expires_in: 1 }, { disabled: 'yes' }, { other: 1 }, { label: 'x'.repeat(201) }];
  for (const b of bad) it(`rejects ${JSON.stringify(b)}`, () => expect(validateKeyInput(b, false, 0).ok).toBe(false));
  it('refuses to change an id on update', () => expect(validateKeyInput({ id: 'x' }, true, 0).ok).toBe(false));
  it('applies an update without touching the original', () => {
    const rec = newRecord({}, 'k', 'h', 1, 'admin');
    const next = applyUpdate(rec, { rpm: 9, disabled: true });
    expect(next).toMatchObject({ rpm: 9, disabled: true, id: 'k', hash: 'h' });
    expect(rec.rpm).toBe(0);
  });
});

describe('parseKeysFile', () => {
  it('reads entries and reports bad ones without failing the rest', () => {
    const text = JSON.stringify({ keys: [
      { id: 'good', hash: 'sha256:' + 'a'.repeat(64), models: ['m'], rpm: 5 },
      { id: 'nohash' },
      { hash: 'b'.repeat(64) },
      { id: 'badrpm', hash: 'c'.repeat(64), rpm: -1 },
    ] });
    const r = parseKeysFile(text, 'file', 7);
    expect(r.records.map((k) => k.id)).toEqual(['good']);
    expect(r.records[0]).toMatchObject({ hash: 'a'.repeat(64), source: 'file', rpm: 5, created_at: 7 });
    expect(r.errors).toHaveLength(3);
    expect(r.errors[0]).toMatch(/gw-key/);
  });
  it('reports a broken file', () => {
    expect(parseKeysFile('{', 'file', 0).errors[0]).toMatch(/not JSON/);
    expect(parseKeysFile('[]', 'file', 0).errors[0]).toMatch(/expected/);
  });
});

/** The rate limiter before the minute counter carried the previous window: the reference for decisions. */
function referenceRate(c: { incr(k: string, d: number): number; get(k: string): number | undefined }, id: string, rpm: number, burst: number, nowMs: number) {
  if (burst > 0) {
    const k = 'b:' + id + ':' + Math.floor(nowMs / 1000);
    if (c.incr(k, 1) > burst) {
      c.incr(k, -1);
      return { retryAfterSec: 1, limit: 'burst' };
    }
  }
  if (rpm > 0) {
    const win = Math.floor(nowMs / 60000);
    const into = (nowMs - win * 60000) / 60000;
    const cur = 'm:' + id + ':' + win;
    const prev = c.get('m:' + id + ':' + (win - 1));
    const n = c.incr(cur, 1);
    const estimate = (prev !== undefined ? prev : 0) * (1 - into) + n;
    if (estimate > rpm) {
      c.incr(cur, -1);
      let wait = 60 - Math.floor(into * 60);
      if (prev !== undefined && prev > 0) wait = Math.min(wait, Math.max(1, Math.ceil(((estimate - rpm) / prev) * 60)));
      return { retryAfterSec: Math.max(1, wait), limit: 'rpm' };
    }
  }
  return null;
}

describe('checkRate', () => {
  it('rpm: allows rpm per window, refuses the next, refused requests do not count', () => {
    const c = fakeCounter();
    const t = 60_000 * 100 + 1000;
    const seq = Array.from({ length: 5 }, () => checkRate(c, 'k', 3, 0, t) === null);
    expect(seq).toEqual([true, true, true, false, false]);
    expect(c.data['m:k:100']).toBe(3);
  });
  it('rpm: the previous window weighs in and fades', () => {
    const c = fakeCounter();
    c.data['m:k:99'] = 10;
    // 10% into window 100: estimate = 10 * 0.9 + n → only one more request fits under 10.
    const t = 60_000 * 100 + 6000;
    expect(checkRate(c, 'k', 10, 0, t)).toBeNull();
    const r = checkRate(c, 'k', 10, 0, t);
    expect(r).toMatchObject({ limit: 'rpm' });
    expect(r!.retryAfterSec).toBeGreaterThanOrEqual(1);
    // 90% into the window the old traffic counts for 1.
    expect(checkRate(c, 'k', 10, 0, 60_000 * 100 + 54_000)).toBeNull();
    // The window carries its predecessor's count: one increment per request, no read.
    expect(c.data['m:k:100']).toBe(10 * PREV + 2);
  });
  it('burst: at most `burst` per second, Retry-After 1', () => {
    const c = fakeCounter();
    const t = 5_000_000;
    expect([checkRate(c, 'k', 0, 2, t), checkRate(c, 'k', 0, 2, t)]).toEqual([null, null]);
    expect(checkRate(c, 'k', 0, 2, t)).toEqual({ retryAfterSec: 1, limit: 'burst' });
    expect(checkRate(c, 'k', 0, 2, t + 1000)).toBeNull();
  });
  it('an allowed request costs one increment per limit once its window has started', () => {
    const c = fakeCounter();
    const t = 60_000 * 7 + 30_000;
    checkRate(c, 'k', 100, 10, t);
    const ops: string[] = [];
    const spy: Counter = {
      incr: (k, d, i) => {
        ops.push('incr ' + k);
        return c.incr(k, d, i);
      },
      get: (k) => {
        ops.push('get ' + k);
        return c.get(k);
      },
    };
    expect(checkRate(spy, 'k', 100, 10, t + 1)).toBeNull();
    expect(ops).toEqual(['incr b:k:450', 'incr m:k:7']);
  });
  it('decides like the two-counter reference for any sequence of requests, limits and clocks', () => {
    const step = fc.record({ dt: fc.constantFrom(0, 1, 7, 400, 999, 1000, 15_000, 59_999, 60_000, 61_000, 130_000), rpm: fc.constantFrom(0, 1, 3, 10), burst: fc.constantFrom(0, 1, 2, 5) });
    fc.assert(fc.property(fc.array(step, { minLength: 1, maxLength: 80 }), fc.integer({ min: 0, max: 10 ** 12 }), (steps, t0) => {
      const mine = fakeCounter();
      const ref = fakeCounter();
      let t = t0;
      for (const s of steps) {
        t += s.dt;
        expect(checkRate(mine, 'k', s.rpm, s.burst, t)).toEqual(referenceRate(ref, 'k', s.rpm, s.burst, t));
        for (const k of Object.keys(ref.data)) expect(k.startsWith('m:') ? windowCount(mine.data[k]) : mine.data[k], k).toBe(ref.data[k]);
      }
    }), { numRuns: 1000 });
  });
  it('a window whose first request died before folding its predecessor in still decides right', () => {
    const c = fakeCounter();
    c.data['m:k:99'] = 4;
    c.data['m:k:100'] = UNSET + 1; // created, never folded
    const t = 60_000 * 100 + 30_000; // estimate = 4 * 0.5 + n
    expect(checkRate(c, 'k', 4, 0, t)).toBeNull(); // n = 2: 4
    expect(checkRate(c, 'k', 4, 0, t)).toMatchObject({ limit: 'rpm' }); // n = 3: 5
    expect(windowCount(c.data['m:k:100'])).toBe(2);
  });
});

describe('key ids', () => {
  it('a letter or digit, then up to 63 of letters, digits, ".", "_", "-"', () => {
    for (const ok of ['a', 'A9', 'team-a.prod_1', 'x'.repeat(64), '0.']) expect(validKeyId(ok), ok).toBe(true);
    for (const bad of ['', '.', '..', '.hidden', '-a', '_a', 'a/b', 'a b', 'é', 'x'.repeat(65), '%2e', 'a\n', 7, null]) expect(validKeyId(bad), String(bad)).toBe(false);
  });
  it('create input and keys files refuse the others with the rule in the message', () => {
    const v = validateKeyInput({ id: '..' }, false, 0);
    expect(v.ok).toBe(false);
    if (!v.ok) expect(v.message).toMatch(/letter or digit followed by up to 63/);
    const f = parseKeysFile(JSON.stringify({ keys: [{ id: '.', hash: 'sha256:' + 'a'.repeat(64) }] }), 'file', 0);
    expect(f.records).toEqual([]);
    expect(f.errors[0]).toMatch(/keys\[0\]: "id" must be/);
  });
});

describe('parseKeysFile: one entry per id and per secret', () => {
  it('skips a second entry for an id or a hash, naming it', () => {
    const h = (c: string) => 'sha256:' + c.repeat(64);
    const f = parseKeysFile(JSON.stringify({ keys: [{ id: 'a', hash: h('1') }, { id: 'a', hash: h('2') }, { id: 'b', hash: h('1') }, { id: 'c', hash: h('3') }] }), 'file', 0);
    expect(f.records.map((r) => r.id)).toEqual(['a', 'c']);
    expect(f.errors).toEqual(['keys[1]: id "a" appears twice; skipped', 'keys[2]: this hash is already used by another entry; skipped']);
  });
});

describe('currentRecord', () => {
  const rec = newRecord({}, 'k', 'h1', 0, 'admin');
  it('trusts an index hit only when the record names the same hash', () => {
    expect(currentRecord('h1', rec)).toBe(rec);
    expect(currentRecord('h0', rec)).toBeNull();
    expect(currentRecord('h1', null)).toBeNull();
  });
});

describe('looseFileProblem', () => {
  const f = (path: string, mode: number, uid = 100) => ({ path, mode, uid });
  const dirs = [f('/srv/gw/state', 0o40700), f('/srv/gw', 0o40755), f('/srv', 0o40755, 0), f('/', 0o40755, 0)];
  it('accepts a 0600/0644 file in folders only their owners can write, and sticky /tmp above', () => {
    expect(looseFileProblem(f('/srv/gw/state/keys-state.json', 0o100600), dirs, [100, 0])).toBeNull();
    expect(looseFileProblem(f('/srv/gw/state/keys-state.json', 0o100644, 0), dirs, [100, 0])).toBeNull();
    expect(looseFileProblem(f('/tmp/x/keys.json', 0o100644), [f('/tmp/x', 0o40755), f('/tmp', 0o41777, 0), f('/', 0o40755, 0)], null)).toBeNull();
  });
  it('refuses a file group or others can write', () => {
    expect(looseFileProblem(f('/k.json', 0o100664), [], null)).toBe('/k.json is writable by group or others (mode 664); refused: chmod 600 /k.json');
    expect(looseFileProblem(f('/k.json', 0o100646), [], null)).toMatch(/mode 646/);
  });
  it('refuses a file in a folder others can write, at any depth, unless sticky', () => {
    expect(looseFileProblem(f('/srv/gw/state/keys-state.json', 0o100600), [dirs[0], f('/srv/gw', 0o40777), dirs[2], dirs[3]], [100, 0]))
      .toMatch(/is in \/srv\/gw, which group or others can write \(mode 777\).*chmod go-w \/srv\/gw/);
    expect(looseFileProblem(f('/tmp/keys.json', 0o100644), [f('/tmp', 0o41777, 0), f('/', 0o40755, 0)], null)).toBeNull();
  });
  it('the state folder itself must not be group/other writable even if sticky', () => {
    expect(looseFileProblem(f('/s/keys-state.json', 0o100600), [f('/s', 0o41777), f('/', 0o40755, 0)], [100, 0])).toMatch(/chmod 700 \/s/);
    expect(looseDirsProblem('/s/keys-state.json', [f('/s', 0o40770)], true)).toMatch(/mode 770\)/);
  });
  it('refuses a state file owned by anyone but the folder owner or root (renamed in by someone else)', () => {
    expect(looseFileProblem(f('/srv/gw/state/keys-state.json', 0o100600, 4242), dirs, [100, 0])).toMatch(/owned by uid 4242, not by the owner of its folder \(uid 100/);
    expect(looseFileProblem(f('/srv/gw/keys.json', 0o100644, 4242), dirs.slice(1), null)).toBeNull(); // ops' keys file: any owner
  });
});

describe('parentDirs', () => {
  it('lists the folders nearest first', () => {
    expect(parentDirs('/a/b/f.json')).toEqual(['/a/b', '/a', '/']);
    expect(parentDirs('/f')).toEqual(['/']);
    expect(parentDirs('/a/b/')).toEqual(['/a', '/']);
  });
});

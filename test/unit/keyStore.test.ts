/**
 * njs/src/ngx/keyStore.ts over an in-memory shared dict: a model-based property test that, for
 * any sequence of creates, patches, rotates and revokes, some of them cut short after any number
 * of dict writes (a worker dying mid-change), exactly the secret the id's record names
 * authenticates: never an older one, never a half-made one, never one of a revoked id.
 */
import fc from 'fast-check';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { applyUpdate, KeyRecord, newRecord } from '../../njs/src/core/keys';
import { sha256 } from '../../tools/clients';

/**
 * The module under test, loaded by a path tsc does not follow: it is njs code (njs globals, checked
 * by the root tsconfig), and this file is type-checked with Node's types.
 */
interface KeyStore {
  create(rec: KeyRecord): boolean;
  update(next: KeyRecord): boolean;
  revoke(id: string): boolean;
  findByHash(hash: string): KeyRecord | null;
  findById(id: string): KeyRecord | null;
  list(): KeyRecord[];
  tryExclusive<T>(fn: () => T): { ok: true; value: T } | { ok: false };
  exclusive<T>(waitMs: number, fn: () => T): Promise<{ ok: true; value: T } | { ok: false }>;
  lookup(hash: string, log: { warn(m: string): void }): string[] | null;
}
const modulePath = '../../njs/src/ngx/keyStore';
const { create, exclusive, findByHash, findById, list, lookup, revoke, tryExclusive, update } = (await import(/* @vite-ignore */ modulePath)) as KeyStore;


class Crash extends Error {}

/** The subset of NgxSharedDict the store uses; `writesLeft` simulates a worker dying before its next write. */
function fakeDict() {
  const data = new Map<string, string>();
  const d = {
    data,
    writesLeft: Infinity,
    write(): void {
      if (d.writesLeft <= 0) throw new Crash('worker died');
      d.writesLeft--;
    },
    get: (k: string) => data.get(k),
    has: (k: string) => data.has(k),
    set(k: string, v: string) { d.write(); data.set(k, v); return d; },
    add(k: string, v: string) { d.write(); if (data.has(k)) return false; data.set(k, v); return true; },
    replace(k: string, v: string) { d.write(); if (!data.has(k)) return false; data.set(k, v); return true; },
    delete(k: string) { d.write(); return data.delete(k); },
    items: () => [...data.entries()],
    keys: () => [...data.keys()],
  };
  return d;
}

let keys = fakeDict();
let lock = fakeDict();
const g = globalThis as unknown as { ngx?: unknown };
const before = g.ngx;
beforeEach(() => {
  keys = fakeDict();
  lock = fakeDict();
  g.ngx = { shared: { gw_keys: keys, gw_keys_lock: lock } };
});
afterAll(() => { g.ngx = before; });

const IDS = ['a', 'b', 'c'];
type Cmd = { op: 'create' | 'rotate' | 'patch' | 'revoke'; id: string; crashAfter: number | null };
const cmd = fc.record({
  op: fc.constantFrom('create', 'rotate', 'patch', 'revoke') as fc.Arbitrary<Cmd['op']>,
  id: fc.constantFrom(...IDS),
  crashAfter: fc.option(fc.integer({ min: 0, max: 3 }), { freq: 3 }),
});

describe('keyStore: what the record says is what authenticates', () => {
  it('holds after every change, including changes cut short after any dict write', () => {
    fc.assert(fc.property(fc.array(cmd, { minLength: 1, maxLength: 40 }), (cmds) => {
      keys = fakeDict();
      g.ngx = { shared: { gw_keys: keys, gw_keys_lock: lock } };
      const issued: { id: string; secret: string }[] = [];
      let n = 0;
      for (const c of cmds) {
        const secret = `sk-${c.id}-${n++}`;
        const prev = findById(c.id);
        keys.writesLeft = c.crashAfter ?? Infinity;
        let result: boolean | 'crashed';
        try {
          if (c.op === 'create') {
            issued.push({ id: c.id, secret });
            result = create(newRecord({ models: '*' }, c.id, sha256(secret), n, 'admin'));
          } else if (c.op === 'rotate' || c.op === 'patch') {
            if (prev === null) continue;
            const next: KeyRecord = applyUpdate(prev, { label: `l${n}` });
            if (c.op === 'rotate') {
              issued.push({ id: c.id, secret });
              next.hash = sha256(secret);
            }
            result = update(next);
          } else {
            result = revoke(c.id);
          }
        } catch (e) {
          if (!(e instanceof Crash)) throw e;
          result = 'crashed';
        }
        keys.writesLeft = Infinity;
        // A change that finished did what it says.
        if (result === true && c.op !== 'revoke') expect(findById(c.id)?.label ?? '').toBe(c.op === 'create' ? '' : `l${n}`);
        if (result === true && c.op === 'revoke') expect(findById(c.id)).toBeNull();
        if (c.op === 'create' && prev !== null) expect(result === false || result === 'crashed').toBe(true);
        // The invariant: a secret authenticates iff its id's record names its hash.
        for (const s of issued) {
          const rec = findById(s.id);
          const current = rec !== null && rec.hash === sha256(s.secret);
          const got = findByHash(sha256(s.secret));
          expect(got !== null, `${s.secret} after ${JSON.stringify(c)}`).toBe(current);
          if (got) expect(got.id).toBe(s.id);
          // The request path's reader (one split, no JSON) answers the same.
          const hot = lookup(sha256(s.secret), { warn: () => undefined });
          expect(hot !== null, `lookup ${s.secret} after ${JSON.stringify(c)}`).toBe(current);
          if (hot) expect(hot[0]).toBe(s.id);
        }
        // Each id has at most one live secret, and list() is the set of records.
        for (const id of IDS) expect(issued.filter((s) => s.id === id && findByHash(sha256(s.secret)) !== null).length).toBeLessThanOrEqual(1);
        expect(list().map((r) => r.id).sort()).toEqual([...keys.data.keys()].filter((k) => k.startsWith('i:')).map((k) => k.slice(2)).sort());
      }
    }), { numRuns: 300 });
  });

  it('an index entry whose id now names another hash never authenticates', () => {
    create(newRecord({}, 'a', sha256('one'), 1, 'admin'));
    keys.data.set(`h:${sha256('two')}`, 'a'); // left behind by a dead worker
    expect(findByHash(sha256('two'))).toBeNull();
    expect(findByHash(sha256('one'))?.id).toBe('a');
    keys.data.delete('i:a');
    expect(findByHash(sha256('one'))).toBeNull();
  });

  it('create is refused for an existing id and for a hash another live key uses', () => {
    expect(create(newRecord({}, 'a', sha256('one'), 1, 'admin'))).toBe(true);
    expect(create(newRecord({}, 'a', sha256('other'), 1, 'admin'))).toBe(false);
    expect(findByHash(sha256('other'))).toBeNull();
    expect(create(newRecord({}, 'b', sha256('one'), 1, 'file'))).toBe(false);
    expect(findByHash(sha256('one'))?.id).toBe('a');
  });

  it('update cannot bring back a revoked id', () => {
    create(newRecord({}, 'a', sha256('one'), 1, 'admin'));
    const stale = findById('a')!;
    revoke('a');
    expect(update(applyUpdate(stale, { label: 'late' }))).toBe(false);
    expect(findById('a')).toBeNull();
    expect(findByHash(sha256('one'))).toBeNull();
  });
});

describe('keyStore: records stored before the request-path line (the zone outlives a reload)', () => {
  it('authenticate, list and change like new ones; a change rewrites them in the new layout', () => {
    const old = { id: 'a', hash: sha256('one'), label: 'old', models: ['m1', 'm2'], rpm: 5, burst: 2, tier: 'high', expires_at: 0, disabled: false, created_at: 1, source: 'admin' };
    keys.data.set('i:a', JSON.stringify(old));
    keys.data.set(`h:${old.hash}`, 'a');
    keys.data.set('meta:loaded', '1');
    expect(lookup(old.hash, { warn: () => undefined })).toEqual(['a', '0', '5', '2', 'high', '["m1","m2"]', 'admin']);
    expect(findById('a')).toEqual(old);
    expect(list()).toEqual([old]);
    expect(update(applyUpdate(findById('a')!, { disabled: true }))).toBe(true);
    expect(keys.data.get('i:a')!.startsWith(`${old.hash}\td\t5\t2\thigh\t["m1","m2"]\tadmin\t{`)).toBe(true);
    expect(lookup(old.hash, { warn: () => undefined })?.[1]).toBe('d');
    expect(revoke('a')).toBe(true);
    expect(lookup(old.hash, { warn: () => undefined })).toBeNull();
  });

  it('an old record that names another hash does not authenticate either', () => {
    keys.data.set('i:a', JSON.stringify({ ...newRecord({}, 'a', sha256('one'), 1, 'admin') }));
    keys.data.set(`h:${sha256('two')}`, 'a');
    keys.data.set('meta:loaded', '1');
    expect(lookup(sha256('two'), { warn: () => undefined })).toBeNull();
    expect(lookup(sha256('one'), { warn: () => undefined })).toBeNull(); // no index entry: not found
  });
});

describe('keyStore: the lock', () => {
  it('one holder at a time; a waiter gets it once it is free', async () => {
    lock.data.set('lock', 'someone-else');
    expect(tryExclusive(() => 1)).toEqual({ ok: false });
    setTimeout(() => lock.data.delete('lock'), 20);
    let inside = 0;
    const res = await exclusive(2000, () => { inside++; return lock.data.get('lock'); });
    expect(res.ok).toBe(true);
    expect(inside).toBe(1);
    expect(lock.data.has('lock')).toBe(false); // released
  });

  it('gives up after the wait and runs nothing; a throwing change still releases the lock', async () => {
    lock.data.set('lock', 'stuck');
    let ran = false;
    expect(await exclusive(30, () => { ran = true; })).toEqual({ ok: false });
    expect(ran).toBe(false);
    lock.data.delete('lock');
    expect(() => tryExclusive(() => { throw new Error('boom'); })).toThrow('boom');
    expect(lock.data.has('lock')).toBe(false);
  });

  it('never releases a lock that is not its own (its own expired and another worker took it)', () => {
    const res = tryExclusive(() => { lock.data.set('lock', 'other-worker'); return 0; });
    expect(res.ok).toBe(true);
    expect(lock.data.get('lock')).toBe('other-worker');
  });
});

describe('keyStore.lookup (the request path)', () => {
  it('loads the key files on the first miss after a start, then answers hits from the dict alone', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-unit-keys-'));
    chmodSync(dir, 0o755);
    const file = join(dir, 'keys.json');
    writeFileSync(file, JSON.stringify({ keys: [{ id: 'ops', hash: `sha256:${sha256('sk-ops')}` }, { id: '..', hash: `sha256:${sha256('sk-dots')}` }] }), { mode: 0o644 });
    const saved = process.env.GW_KEYS_FILE;
    process.env.GW_KEYS_FILE = file;
    try {
      const warned: string[] = [];
      expect(lookup(sha256('sk-ops'), { warn: (m) => warned.push(m) })?.[0]).toBe('ops');
      expect(keys.data.get('meta:loaded')).toBe('1');
      expect(warned).toEqual([`gw: keys: ${file}: keys[1]: "id" must be a letter or digit followed by up to 63 letters, digits, ".", "_" or "-".`]);
      expect(lookup(sha256('sk-dots'), { warn: (m) => warned.push(m) })).toBeNull();
      // A hit reads the index and the record, nothing else.
      const reads: string[] = [];
      const get = keys.get;
      keys.get = (k: string) => { reads.push(k); return get(k); };
      expect(lookup(sha256('sk-ops'), { warn: () => undefined })).toEqual(['ops', '0', '0', '0', 'normal', '*', 'file']);
      expect(reads).toEqual([`h:${sha256('sk-ops')}`, 'i:ops']);
    } finally {
      if (saved === undefined) delete process.env.GW_KEYS_FILE;
      else process.env.GW_KEYS_FILE = saved;
    }
  });

  it('a keys file others can write is not loaded', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-unit-keys-'));
    chmodSync(dir, 0o755);
    const file = join(dir, 'keys.json');
    writeFileSync(file, JSON.stringify({ keys: [{ id: 'ops', hash: `sha256:${sha256('sk-ops')}` }] }));
    chmodSync(file, 0o666);
    const saved = process.env.GW_KEYS_FILE;
    process.env.GW_KEYS_FILE = file;
    try {
      const warned: string[] = [];
      expect(lookup(sha256('sk-ops'), { warn: (m) => warned.push(m) })).toBeNull();
      expect(warned[0]).toMatch(/is writable by group or others \(mode 666\); refused: chmod 600/);
    } finally {
      if (saved === undefined) delete process.env.GW_KEYS_FILE;
      else process.env.GW_KEYS_FILE = saved;
    }
  });
});

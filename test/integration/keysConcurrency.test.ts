/**
 * The key store under concurrent admin calls and file syncs (docs/api-keys.md#guarantees): while
 * many connections create, patch, rotate and revoke the same ids at once, and GW_KEYS_FILE
 * changes under the admin API, other connections authenticate with every secret ever issued.
 * Violations counted (all must be zero):
 *   late:  a secret gets in with a request SENT after the answer of a call that ended it (a
 *          revoke of its id, or a rotate sent after the secret was issued) had been received;
 *   extra: at rest, a secret a finished call ended still authenticates, a revoked id is listed
 *          again, a listed id has other than exactly one live secret, or the state file (what a
 *          restart loads) differs from what the API lists.
 * On main before this design (no lock, authentication by the h:<hash> index alone, each worker
 * writing the state file from its own snapshot) the admin race failed in every run (6 of 6): a
 * revoked id listed again after a racing PATCH, two live secrets for one id after racing rotates,
 * revoked keys left in the state file. The file-sync race did not show there (its window is a few
 * microseconds); it stays as a check that an id gets one owner.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { CHAT, sha256 } from '../../tools/clients';
import { sleep } from '../../tools/nginx';
import { useGateway } from '../support/useGateway';

const keysDir = mkdtempSync(join(tmpdir(), 'gw-keysrace-'));
chmodSync(keysDir, 0o755);
const keysFile = join(keysDir, 'keys.json');
const SENTINEL_PREFIX = 'sk-gw-sentinel-';

/** Writes GW_KEYS_FILE with write + rename, as ops tooling should. */
function writeKeysFile(entries: { id: string; secret: string }[]): void {
  const tmp = `${keysFile}.tmp`;
  writeFileSync(tmp, JSON.stringify({ keys: entries.map((e) => ({ id: e.id, hash: `sha256:${sha256(e.secret)}`, models: '*' })) }), { mode: 0o644 });
  renameSync(tmp, keysFile);
}
/**
 * Ballast: a store of realistic size. Every change lists the whole store to write the state file,
 * which takes long enough that two workers' changes really overlap on a small machine.
 */
const BALLAST = Array.from({ length: 1500 }, (_, k) => ({ id: `ballast-${k}`, secret: `sk-gw-ballast-${k}-${randomBytes(6).toString('hex')}` }));
writeKeysFile([{ id: 'sentinel-0', secret: `${SENTINEL_PREFIX}0` }]);

const gw = useGateway({
  auth: true,
  workers: 2,
  env: { GW_KEYS_FILE: keysFile },
  backends: { be_chat: {} },
  models: { [CHAT]: { upstream: 'be_chat' } },
  // reuseport: the kernel spreads new connections over both workers, so racing calls really run in
  // parallel in two processes (without it one worker often accepts them all, one after another).
  render: { patch: (c) => c.replace(/listen (127\.0\.0\.1:\d+);/g, 'listen $1 reuseport;') },
});

async function admin(method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${gw.adminUrl}${path}`, {
    method, headers: { authorization: `Bearer ${gw.adminToken}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

/** true when the key authenticates (any answer but 401); half the probes open a new connection so both workers answer. */
async function authenticates(secret: string, fresh: boolean): Promise<boolean> {
  const res = await fetch(`${gw.url}/v1/models`, { headers: { authorization: `Bearer ${secret}`, ...(fresh ? { connection: 'close' } : {}) } });
  await res.arrayBuffer();
  if (res.status !== 200 && res.status !== 401 && res.status !== 429) throw new Error(`probe answered ${res.status}`);
  return res.status !== 401;
}

interface Secret { id: string; secret: string; issuedAt: number; deadAt: number }

/** Every secret issued in this file, with when (if ever) a finished call ended it. */
const secrets: Secret[] = [];
const late: string[] = [];

function issue(id: string, secret: string): Secret {
  const s = { id, secret, issuedAt: performance.now(), deadAt: Infinity };
  secrets.push(s);
  return s;
}

/** Probes random secrets of `pool()` until stop() resolves; records late admissions. */
function probeWhile(pool: () => Secret[], stop: Promise<void>, connections: number): Promise<number> {
  let done = false;
  let count = 0;
  void stop.then(() => { done = true; });
  const loop = async (n: number) => {
    while (!done) {
      const p = pool();
      if (p.length === 0) { await sleep(1); continue; }
      const s = p[Math.floor(Math.random() * p.length)];
      const sentAt = performance.now();
      const ok = await authenticates(s.secret, (count + n) % 2 === 0);
      count++;
      if (ok && sentAt > s.deadAt) late.push(`${s.id}: a secret ended ${(sentAt - s.deadAt).toFixed(1)} ms before the request was sent still authenticated`);
    }
  };
  return Promise.all(Array.from({ length: connections }, (_, n) => loop(n))).then(() => count);
}

/** Ids a DELETE was answered 200 for (and not created again since): they must stay gone. */
const gone = new Set<string>();

/**
 * At rest: no secret that a finished call ended authenticates; an id that was revoked is not
 * listed; a listed id has exactly one live secret, an unlisted one none.
 */
async function extraSecrets(ids: string[]): Promise<string[]> {
  const problems: string[] = [];
  const listed = new Set(((await admin('GET', '/admin/keys')).json.data as { id: string }[]).map((k) => k.id));
  for (const id of ids) {
    const mine = secrets.filter((s) => s.id === id);
    const live: Secret[] = [];
    for (const s of mine) if (await authenticates(s.secret, false)) live.push(s);
    for (const s of live) if (s.deadAt !== Infinity) problems.push(`${id}: a secret that a finished call ended still authenticates`);
    if (gone.has(id) && listed.has(id)) problems.push(`${id}: revoked (DELETE answered 200), yet listed again`);
    if (!listed.has(id) && live.length > 0) problems.push(`${id}: not in GET /admin/keys, yet ${live.length} of its secrets authenticate`);
    if (listed.has(id) && live.length !== 1) problems.push(`${id}: listed, and ${live.length} of its ${mine.length} secrets authenticate (want exactly 1)`);
  }
  return problems;
}

/**
 * At rest, the state file (what a restart loads) must hold exactly the admin keys the API lists,
 * each with the hash of the secret that authenticates.
 */
async function stateFileMismatch(): Promise<string[]> {
  const file = JSON.parse(readFileSync(join(gw.stateDir, 'keys-state.json'), 'utf8')) as { keys: { id: string; hash: string }[] };
  const inFile = new Map(file.keys.map((k) => [k.id, k.hash]));
  const listed = ((await admin('GET', '/admin/keys')).json.data as { id: string; source: string }[]).filter((k) => k.source === 'admin').map((k) => k.id);
  const problems: string[] = [];
  for (const id of listed) {
    if (!inFile.has(id)) {
      problems.push(`${id}: listed by the API but missing from the state file`);
      continue;
    }
    // Of two rotates racing, either may be the later one: the current secret is the one that works.
    let current: Secret | undefined;
    for (const s of secrets) if (s.id === id && s.deadAt === Infinity && (await authenticates(s.secret, false))) current = s;
    if (current && inFile.get(id) !== `sha256:${sha256(current.secret)}`) problems.push(`${id}: the state file holds another secret's hash than the one that authenticates`);
  }
  for (const id of inFile.keys()) if (!listed.includes(id)) problems.push(`${id}: in the state file but not listed by the API${gone.has(id) ? ' (it was revoked)' : ''}`);
  return problems;
}

/** Records a DELETE answered 200: every secret of the id is over. */
function revoked(id: string): void {
  const now = performance.now();
  for (const o of secrets) if (o.id === id) o.deadAt = Math.min(o.deadAt, now);
  gone.add(id);
}

/**
 * A PATCH with a long model list takes a while to parse and check: a wide window for a revoke of
 * the same id to land in between, as it would on a busier machine.
 */
const LONG_MODEL_LIST = Array.from({ length: 900 }, (_, i) => `org-${i}/model-name-${i}-instruct-v${i % 7}`);

/** Mostly none: the racing calls leave together; sometimes a little, to vary the interleavings. */
const jitter = () => (Math.random() < 0.7 ? Promise.resolve() : sleep(Math.floor(Math.random() * 2)));

describe('key store under concurrent changes', () => {
  it('admin calls: concurrent create / patch / rotate / revoke of the same ids never leave a dead secret alive', async () => {
    const extra: string[] = [];
    let calls = 0;
    let probes = 0;
    const until = performance.now() + 8000;
    for (let round = 0; performance.now() < until && round < 200; round++) {
      const ids = Array.from({ length: 6 }, (_, k) => `r${round}-${k}`);
      const roundSecrets: Secret[] = [];
      let stopProbes!: () => void;
      const stop = new Promise<void>((res) => { stopProbes = res; });
      const probing = probeWhile(() => roundSecrets, stop, 6);
      await Promise.all(ids.map(async (id, k) => {
        const c = await admin('POST', '/admin/keys', { id, models: '*' });
        expect(c.status).toBe(201);
        roundSecrets.push(issue(id, c.json.key as string));
        const withDelete = (round + k) % 2 === 0;
        const ops: (() => Promise<void>)[] = [];
        for (let j = 0; j < 2; j++) {
          ops.push(async () => {
            await jitter();
            const sentAt = performance.now();
            const r = await admin('POST', `/admin/keys/${id}/rotate`);
            if (r.status === 200) {
              const s = issue(id, r.json.key as string);
              roundSecrets.push(s);
              // Every secret of this id issued before this rotate was sent is over.
              for (const o of secrets) if (o.id === id && o !== s && o.issuedAt < sentAt) o.deadAt = Math.min(o.deadAt, performance.now());
            } else expect(r.status, JSON.stringify(r.json)).toBe(404);
          });
          ops.push(async () => {
            await jitter();
            const r = await admin('PATCH', `/admin/keys/${id}`, { label: `p${j}`, rpm: j * 100000, models: j === 0 ? '*' : LONG_MODEL_LIST });
            expect([200, 404]).toContain(r.status);
          });
        }
        if (withDelete) {
          ops.push(async () => {
            await jitter();
            const r = await admin('DELETE', `/admin/keys/${id}`);
            expect(r.status).toBe(200);
            revoked(id);
          });
        }
        await Promise.all(ops.map((op) => op()));
        calls += 1 + ops.length;
      }));
      // Keep probing a little after the last answer: a revived key would show here.
      await sleep(5);
      stopProbes();
      probes += await probing;
      extra.push(...(await extraSecrets(ids)), ...(await stateFileMismatch()));
      // Clean up so the dict does not fill over the rounds.
      await Promise.all(ids.map(async (id) => { if ((await admin('DELETE', `/admin/keys/${id}`)).status === 200) revoked(id); }));
    }
    console.log(`admin race: ${calls} admin calls, ${probes} probes, ${late.length} late, ${extra.length} extra`);
    expect(calls).toBeGreaterThan(150);
    expect(late).toEqual([]);
    expect(extra).toEqual([]);
  }, 60_000);

  it('state file: after bursts of concurrent changes it holds exactly what the API answered, and a restart brings that back', async () => {
    const extra: string[] = [];
    const all: string[] = [];
    const until = performance.now() + 3000;
    let cycles = 0;
    for (let cycle = 0; cycle < 300 && performance.now() < until; cycle++, cycles++) {
      const ids = Array.from({ length: 6 }, (_, k) => `s${cycle}-${k}`);
      all.push(...ids);
      await Promise.all(ids.map(async (id) => {
        const c = await admin('POST', '/admin/keys', { id, models: '*' });
        expect(c.status).toBe(201);
        issue(id, c.json.key as string);
      }));
      // Every change writes the whole state file: these bursts make the writes of both workers overlap.
      await Promise.all(ids.map(async (id, k) => {
        if (k % 3 === 0) {
          expect((await admin('DELETE', `/admin/keys/${id}`)).status).toBe(200);
          revoked(id);
          return;
        }
        const r = await admin('POST', `/admin/keys/${id}/rotate`);
        expect(r.status).toBe(200);
        const now = performance.now();
        for (const o of secrets) if (o.id === id) o.deadAt = Math.min(o.deadAt, now);
        issue(id, r.json.key as string);
        if (k % 3 === 2) expect((await admin('PATCH', `/admin/keys/${id}`, { label: 'kept' })).status).toBe(200);
      }));
      extra.push(...(await stateFileMismatch()));
    }
    await gw.restart();
    extra.push(...(await extraSecrets(all)));
    console.log(`state file: ${cycles} cycles, ${extra.length} mismatches`);
    expect(extra).toEqual([]);
  }, 60_000);

  it('file sync: GW_KEYS_FILE adding the ids the admin API is creating at the same moment; one source wins each id', async () => {
    gw.allowErrorLog(/is already used by a key from/);
    const extra: string[] = [];
    for (let round = 1; round <= 1; round++) {
      const ids = Array.from({ length: 150 }, (_, k) => `f${round}-${k}`);
      const fileEntries = ids.map((id) => ({ id, secret: `sk-gw-file-${randomBytes(12).toString('hex')}` }));
      const sentinel = `${SENTINEL_PREFIX}${round}`;
      for (const e of fileEntries) issue(e.id, e.secret);
      writeKeysFile([{ id: `sentinel-${round}`, secret: sentinel }, ...BALLAST, ...fileEntries]);
      // Create the same ids through the admin API until the sync has happened, over and over
      // (each id once; the file sync applies them in one pass that these calls interleave with).
      let synced = false;
      const creating = (async () => {
        let k = 0;
        while (!synced) {
          const batch = ids.slice(k, k + 8);
          k = (k + 8) % ids.length;
          await Promise.all(batch.map(async (id) => {
            const r = await admin('POST', '/admin/keys', { id, models: '*' });
            if (r.status === 201) issue(id, r.json.key as string);
            else {
              expect(r.status).toBe(400);
              // Taken: by the file or by an earlier call of ours; revoke ours so the race repeats.
            }
            if (r.status === 201 && !synced) {
              const d = await admin('DELETE', `/admin/keys/${id}`);
              expect(d.status).toBe(200);
              const now = performance.now();
              for (const o of secrets) if (o.id === id && !o.secret.startsWith('sk-gw-file-')) o.deadAt = Math.min(o.deadAt, now);
            }
          }));
        }
      })();
      for (let i = 0; i < 60 && !synced; i++) {
        await sleep(200);
        synced = await authenticates(sentinel, false);
      }
      await creating;
      expect(synced, 'GW_KEYS_FILE was re-read').toBe(true);
      extra.push(...(await extraSecrets(ids)));
    }
    console.log(`file race: ${extra.length} extra`);
    expect(late).toEqual([]);
    expect(extra).toEqual([]);
  }, 60_000);
});

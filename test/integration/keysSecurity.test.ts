/**
 * Who may change the key store, and what never reaches a log (docs/api-keys.md#guarantees):
 *   - a keys file or state file that someone other than its owner could have written (loose mode,
 *     a folder others can write, a state file owned by another user) is refused with a log line
 *     naming the fix, and none of its keys authenticates;
 *   - hostile header variants (duplicates, oversized, malformed) leave no key and no admin token
 *     in any log nginx writes (error, access; the admin server logs there too).
 * Both fail on main before this change: it loaded a 0666 keys file and a state file any user put
 * in its 0777 state folder, and its `error_log ... info` printed refused Authorization headers.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, mkdtempSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CHAT, chatBody, sha256 } from '../../tools/clients';
import { nginxDir } from '../../tools/config';
import { eventually } from '../support/eventually';
import { waitForLogLine } from '../support/logSchema';
import { rawRequest } from '../support/rawHttp';
import { useGateway } from '../support/useGateway';

const secret = (tag: string) => `sk-gw-${tag}-${randomBytes(12).toString('hex')}`;

const keysDir = mkdtempSync(join(tmpdir(), 'gw-keysec-'));
chmodSync(keysDir, 0o755);
const keysFile = join(keysDir, 'keys.json');
const BOOT = secret('boot');
const LOOSE = secret('loose');

function keysDoc(entries: { id: string; key: string }[]): string {
  return JSON.stringify({ keys: entries.map((e) => ({ id: e.id, hash: `sha256:${sha256(e.key)}`, models: '*' })) });
}
writeFileSync(keysFile, keysDoc([{ id: 'boot', key: BOOT }]), { mode: 0o644 });

const gw = useGateway({
  auth: true,
  env: { GW_KEYS_FILE: keysFile },
  backends: { be_chat: {} },
  models: { [CHAT]: { upstream: 'be_chat' } },
});

/** Every secret this file used; none may appear in a log. */
const secrets = new Set<string>([BOOT, LOOSE]);

async function works(key: string): Promise<boolean> {
  const res = await fetch(`${gw.url}/v1/models`, { headers: { authorization: `Bearer ${key}` } });
  await res.arrayBuffer();
  return res.status === 200;
}

/** Waits (the key sync runs every 5 s) until `key` works. */
async function worksSoon(key: string): Promise<void> {
  await eventually(async () => expect(await works(key)).toBe(true), { everyMs: 250 });
}

/** Waits until the key sync has logged `re` (it refused a file), then that change must not have let a key in. */
async function refusalLogged(re: RegExp): Promise<void> {
  await eventually(() => expect(gw.errorLogSinceTestStart()).toMatch(re), { everyMs: 250 });
}

async function admin(method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${gw.adminUrl}${path}`, {
    method, headers: { authorization: `Bearer ${gw.adminToken}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

/** Writes a keys file as another tool would: write a temporary file, then rename it over. */
function replaceFile(path: string, text: string, mode: number, uid?: number): void {
  const tmp = `${path}.new`;
  writeFileSync(tmp, text, { mode });
  chmodSync(tmp, mode);
  if (uid !== undefined) chownSync(tmp, uid, uid);
  renameSync(tmp, path);
}

const isRoot = process.getuid?.() === 0;

describe('only the gateway and its operator can add keys', () => {
  it('a GW_KEYS_FILE writable by group or others is refused, with the fix in the log; fixed, it loads', async () => {
    gw.allowErrorLog(/writable by group or others/);
    expect(await works(BOOT)).toBe(true);
    replaceFile(keysFile, keysDoc([{ id: 'boot', key: BOOT }, { id: 'loose', key: LOOSE }]), 0o666);
    await refusalLogged(new RegExp(`${keysFile} is writable by group or others \\(mode 666\\); refused: chmod 600`));
    expect(await works(LOOSE)).toBe(false);
    expect(await works(BOOT)).toBe(true); // the keys loaded before stay
    chmodSync(keysFile, 0o644);
    await worksSoon(LOOSE);
  }, 30_000);

  it('a GW_KEYS_FILE in a folder others can write (not sticky) is refused', async () => {
    gw.allowErrorLog(/which group or others can write/);
    const extra = secret('dir');
    secrets.add(extra);
    chmodSync(keysDir, 0o777);
    try {
      replaceFile(keysFile, keysDoc([{ id: 'boot', key: BOOT }, { id: 'loose', key: LOOSE }, { id: 'dir', key: extra }]), 0o644);
      await refusalLogged(new RegExp(`is in ${keysDir}, which group or others can write \\(mode 777\\)`));
      expect(await works(extra)).toBe(false);
    } finally {
      chmodSync(keysDir, 0o755);
    }
    // The folder fixed, the next change of the file is read.
    replaceFile(keysFile, keysDoc([{ id: 'boot', key: BOOT }, { id: 'dir', key: extra }]), 0o644);
    await worksSoon(extra);
  }, 30_000);

  it('the state folder is 0700 and the state file 0600, owned by the workers\' user', async () => {
    const k = await admin('POST', '/admin/keys', { id: 'made-by-api', models: '*' });
    expect(k.status).toBe(201);
    secrets.add(k.json.key as string);
    expect(k.json.persisted).toBeUndefined();
    const dir = statSync(gw.stateDir);
    const file = statSync(join(gw.stateDir, 'keys-state.json'));
    expect((dir.mode & 0o777).toString(8)).toBe('700');
    expect((file.mode & 0o777).toString(8)).toBe('600');
    expect(file.uid).toBe(dir.uid);
    // No temporary file is left behind.
    expect(readdirSync(gw.stateDir)).toEqual(['keys-state.json']);
  });

  it.skipIf(!isRoot)('a state file another user put in place is refused at load (the rename attack)', async () => {
    gw.allowErrorLog(/owned by uid 4242/);
    const evil = secret('evil');
    secrets.add(evil);
    const statePath = join(gw.stateDir, 'keys-state.json');
    const doc = JSON.parse(readFileSync(statePath, 'utf8'));
    doc.keys.push({ id: 'evil', hash: `sha256:${sha256(evil)}`, models: '*', tier: 'high' });
    replaceFile(statePath, JSON.stringify(doc), 0o600, 4242);
    await gw.restart();
    expect(await works(evil)).toBe(false);
    expect(await works(BOOT)).toBe(true);
    await eventually(() => expect(gw.nginx.errorLog()).toMatch(/keys-state\.json is owned by uid 4242, not by the owner of its folder/), { timeoutMs: 5_000 });
    expect((await admin('GET', '/admin/keys/evil')).status).toBe(404);
  }, 30_000);

  it('a state folder others can write: nothing is loaded from it or written to it, and the log names the fix', async () => {
    gw.allowErrorLog(/which group or others can write|could not write the key state file/);
    const statePath = join(gw.stateDir, 'keys-state.json');
    // A clean state file with one API key, then the folder loosened.
    const good = secret('good');
    secrets.add(good);
    replaceFile(statePath, JSON.stringify({ keys: [{ id: 'good', hash: `sha256:${sha256(good)}`, models: '*' }] }), 0o600, statSync(gw.stateDir).uid);
    chmodSync(gw.stateDir, 0o777);
    try {
      await gw.restart();
      expect(await works(good)).toBe(false);
      // The load may be the startup key sync's (worker 0) rather than this request's: its line can land a moment later.
      await eventually(() => expect(gw.nginx.errorLog()).toMatch(new RegExp(`keys-state\\.json is in ${gw.stateDir}, which group or others can write \\(mode 777\\).*chmod 700`)), { timeoutMs: 5_000 });
      const k = await admin('POST', '/admin/keys', { models: '*' });
      expect(k.status).toBe(201);
      secrets.add(k.json.key as string);
      expect(k.json.persisted).toBe(false);
      await eventually(() => expect(gw.nginx.errorLog()).toMatch(/not writing the key state file/), { timeoutMs: 5_000 });
    } finally {
      chmodSync(gw.stateDir, 0o700);
    }
    await gw.restart();
    expect(await works(good)).toBe(true);
  }, 30_000);
});

describe('no key and no admin token in any log', () => {
  it('duplicate, oversized and malformed key headers on both servers', async () => {
    const k = await admin('POST', '/admin/keys', { models: '*' });
    const live = k.json.key as string;
    secrets.add(live);
    const other = secret('other');
    secrets.add(other);
    const token = gw.adminToken;
    const body = chatBody(CHAT);
    const post = (headers: string[]) =>
      `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n${headers.map((h) => `${h}\r\n`).join('')}Content-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`;
    const get = (path: string, headers: string[]) => `GET ${path} HTTP/1.1\r\nHost: x\r\n${headers.map((h) => `${h}\r\n`).join('')}Connection: close\r\n\r\n`;
    const variants: string[][] = [];
    for (const key of [live, other, token]) {
      variants.push(
        [`Authorization: Bearer ${key}`, `Authorization: Bearer ${key}`],
        [`Authorization: Bearer ${key}`, `Authorization: Bearer ${other}`],
        [`api-key: ${key}`, `api-key: ${key}`],
        [`x-api-key: ${key}`, `x-api-key: ${key}`],
        [`Authorization: Bearer ${key}`, `api-key: ${key}`, `x-api-key: ${key}`],
        [`Authorization: Bearer ${key}${'x'.repeat(9000)}`],            // longer than a header buffer
        [`Authorization: Bearer ${key}`, `X-Pad: ${'p'.repeat(40000)}`], // the whole header too large
        [`Authorization : Bearer ${key}`],                                // space before the colon
        [`Authorization: Bearer ${key}\u0001`],                          // control character
        [`Authorization: Basic ${Buffer.from(`u:${key}`).toString('base64')}`, `Auth\u00f6rization: Bearer ${key}`],
        [`Authorization: Bearer  ${key} extra`],
        [`x-api-key: ${key}`, `Authorization: Bearer ${key}`, `Authorization: Bearer ${key}`],
      );
    }
    // Raw bytes: fetch would merge or refuse these headers before sending them.
    const statuses: number[] = [];
    const adminPort = Number(new URL(gw.adminUrl).port);
    for (const h of variants) {
      statuses.push((await rawRequest(gw.port, post(h), { halfClose: false })).status);
      statuses.push((await rawRequest(gw.port, get('/v1/models', h), { halfClose: false })).status);
      statuses.push((await rawRequest(adminPort, get('/admin/keys', h), { halfClose: false })).status);
    }
    // Every variant got an HTTP answer (nginx or the gateway refused it), none crashed a worker.
    expect(statuses.filter((s) => s === 0)).toEqual([]);
    expect(await works(live)).toBe(true);
    // nginx writes a request's access line after its answer: wait for the line of one last request.
    const lastId = `keys-security-last-${randomBytes(6).toString('hex')}`;
    await (await fetch(`${gw.url}/v1/models`, { headers: { authorization: `Bearer ${live}`, 'x-request-id': lastId } })).arrayBuffer();
    await waitForLogLine(() => gw.nginx.accessLog(), lastId);
    const logsDir = join(gw.prefix, 'logs');
    const files = readdirSync(logsDir).filter((f) => f.endsWith('.log'));
    expect(files).toEqual(expect.arrayContaining(['error.log', 'access.log']));
    const text = files.map((f) => readFileSync(join(logsDir, f), 'latin1')).join('\n');
    expect(text.length).toBeGreaterThan(1000);
    const leaked = [...secrets, token].filter((s) => text.includes(s) || text.includes(s.slice(0, 24)));
    expect(leaked, 'a key or the admin token reached a log').toEqual([]);
  }, 30_000);

  it('the example config logs at notice: nginx prints refused request headers at info', () => {
    const conf = readFileSync(join(nginxDir, 'nginx.conf.example'), 'utf8');
    const level = /^error_log\s+\S+\s+(\w+);/m.exec(conf)?.[1];
    expect(['notice', 'warn', 'error', 'crit', 'alert', 'emerg']).toContain(level);
  });
});

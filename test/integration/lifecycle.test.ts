/**
 * `npm start`'s lifecycle (scripts/run.ts), run as a user runs it, in its own run folder
 * (GW_RUN_DIR) on free ports: signals to each process of the chain (npm → node run.ts → nginx
 * master → workers, and npx → sh → tsx → node), `npm run stop`, a taken port. After each, no
 * process of the run may remain (checked by pid) and no port may still answer.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { projectRoot } from '../../tools/config';
import { findNginx } from '../../tools/findNginx';
import { alive, sleep, waitForPort } from '../../tools/nginx';
import { freePort } from '../../tools/stack';
import { eventually } from '../support/eventually';

const MODEL = 'test/lifecycle-model';
const hasSetpriv = (() => {
  try {
    return /--pdeathsig/.test(execFileSync('setpriv', ['--help'], { encoding: 'utf8' }));
  } catch {
    return false;
  }
})();

interface Run {
  child: ChildProcess;
  dir: string;
  port: number;
  adminPort: number;
  mockPort: number;
  out: () => string;
  err: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exited: () => boolean;
}

const runs: Run[] = [];
const dirs: string[] = [];

function readPid(file: string): number {
  return Number(readFileSync(file, 'utf8').trim());
}

/** Children of a process, from /proc (the workers of an nginx master). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Processes whose command line names this run folder (nginx runs with `-p <dir>`). */
function processesNaming(dir: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(dir)) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Waits for an event with a deadline (not a speed assertion: the deadline only bounds a hang). */
async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  await eventually(async () => {
    if (!(await ok())) throw new Error(`gave up waiting: ${what}`);
  }, { timeoutMs: ms, everyMs: 50 });
}

async function answers(port: number): Promise<boolean> {
  return waitForPort('127.0.0.1', port, 100);
}

/**
 * `npm start` is `npm run build --silent && exec node --import tsx scripts/run.ts`: npm, then node
 * (the shell execs it). The build is left out here (it rewrites dist/, which other test files are
 * reading), the rest is taken from package.json so the chain tested is the one users get.
 */
function startCommand(): string {
  const start = (JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.start;
  const prefix = 'npm run build --silent && ';
  if (!start.startsWith(prefix)) throw new Error(`package.json "start" no longer begins with "${prefix}": update this test`);
  return start.slice(prefix.length);
}

type Via = 'npm' | 'npx tsx';

async function launch(opts: { env?: Record<string, string>; mocks?: '0' | '1' | 'unset'; port?: number; via?: Via } = {}): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'gw-life-'));
  dirs.push(dir);
  chmodSync(dir, 0o755); // workers drop root to an unprivileged user
  const port = opts.port ?? (await freePort());
  const adminPort = await freePort();
  const mockPort = await freePort();
  const configPath = join(dir, 'gateway.json');
  writeFileSync(configPath, JSON.stringify({
    upstreams: { be_life: { servers: [`127.0.0.1:${mockPort}`] } },
    models: { [MODEL]: { upstream: 'be_life', aliases: ['life'] } },
  }));
  const runDir = join(dir, 'run');
  const env: Record<string, string | undefined> = {
    ...process.env,
    GW_RUN_DIR: runDir, GW_CONFIG: configPath, GW_LISTEN: `127.0.0.1:${port}`, GW_ADMIN_LISTEN: `127.0.0.1:${adminPort}`,
    GW_WORKERS: '1', GW_MOCK_LATENCY_MS: '0', GW_MOCKS: opts.mocks === 'unset' ? undefined : (opts.mocks ?? '1'),
    GW_KEYS_FILE: undefined, GW_ADMIN_TOKEN: undefined, GW_ADMIN_TOKEN_FILE: undefined, GW_STATE_DIR: undefined, GW_AUTH: undefined,
    ...opts.env,
  };
  // Its own process group, so that the test's own cleanup can reach every process of it.
  const argv = (opts.via ?? 'npm') === 'npm' ? ['npm', 'exec', '-c', startCommand()] : ['npx', 'tsx', 'scripts/run.ts'];
  const child = spawn(argv[0], argv.slice(1), { cwd: projectRoot, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d) => { out += d; });
  child.stderr?.on('data', (d) => { err += d; });
  let done = false;
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.once('exit', (code, signal) => { done = true; res({ code, signal }); }));
  const run: Run = { child, dir: runDir, port, adminPort, mockPort, out: () => out, err: () => err, exit, exited: () => done };
  runs.push(run);
  return run;
}

async function launched(opts: Parameters<typeof launch>[0] = {}): Promise<Run> {
  const run = await launch(opts);
  await until('the gateway banner (or an exit)', () => /^gateway: /m.test(run.out()) || run.exited(), 60_000);
  if (run.exited()) throw new Error(`npm start exited early:\n${run.out()}\n${run.err()}`);
  return run;
}

/** Every pid of a running gateway: npx at the top, run.ts, the nginx master and its workers. */
function pidsOf(run: Run): { top: number; node: number; master: number; workers: number[] } {
  const master = readPid(join(run.dir, 'logs/nginx.pid'));
  return { top: run.child.pid ?? -1, node: readPid(join(run.dir, 'run.pid')), master, workers: childrenOf(master) };
}

async function expectServing(run: Run): Promise<void> {
  const key = readFileSync(join(run.dir, 'dev-key'), 'utf8').trim();
  const res = await fetch(`http://127.0.0.1:${run.port}/v1/chat/completions`, {
    method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'life', messages: [{ role: 'user', content: 'hi' }] }),
  });
  expect(res.status).toBe(200);
  expect(res.headers.get('x-mock-backend')).toBe('mock-be_life');
}

async function expectAllGone(run: Run, pids: number[], o: { cleanExit?: boolean } = {}): Promise<void> {
  await until(`pids ${pids.join(',')} to exit`, () => pids.every((p) => !alive(p)));
  await until('npx to exit', () => run.exited());
  for (const port of [run.port, run.adminPort, run.mockPort]) expect(await answers(port), `port ${port} still answers`).toBe(false);
  expect(processesNaming(run.dir)).toEqual([]);
  // A SIGKILLed run.ts cannot remove its pid file; `npm run stop` then finds the pid dead.
  if (o.cleanExit !== false) expect(existsSync(join(run.dir, 'run.pid')), 'run.pid removed on the way out').toBe(false);
}

afterEach(async () => {
  // A failed test must not leave a gateway behind for the next one.
  for (const run of runs.splice(0)) {
    if (!run.exited() && run.child.pid) {
      try { process.kill(-run.child.pid, 'SIGKILL'); } catch { /* gone */ }
    }
    for (const p of processesNaming(run.dir)) {
      try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
    }
  }
});

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('npm start stops everything it started', () => {
  it.each(['SIGINT', 'SIGTERM', 'SIGHUP'] as const)('on %s to the node process running scripts/run.ts', async (sig) => {
    const run = await launched();
    await expectServing(run);
    const p = pidsOf(run);
    expect(p.workers.length).toBeGreaterThan(0);
    process.kill(p.node, sig);
    await expectAllGone(run, [p.node, p.master, ...p.workers]);
    expect((await run.exit).code).toBe(0);
    expect(run.err()).toContain(`${sig}: stopping nginx and the mock backends`);
  });

  it.each(['SIGINT', 'SIGTERM', 'SIGHUP'] as const)('on %s to the npm process above it', async (sig) => {
    const run = await launched();
    const p = pidsOf(run);
    process.kill(p.top, sig);
    await expectAllGone(run, [p.top, p.node, p.master, ...p.workers]);
  });

  // npx runs `sh -c tsx scripts/run.ts` and tsx runs the script in a second node: npx's SIGTERM kills
  // the shell, SIGHUP kills npx, either way tsx is re-parented and run.ts notices. (A SIGINT sent
  // to npx alone reaches only that shell, which waits for its child: Ctrl-C in a terminal signals
  // the whole process group and is covered by the SIGINT to node above.)
  it.each(['SIGTERM', 'SIGHUP'] as const)('on %s to npx when started as `npx tsx scripts/run.ts`', async (sig) => {
    const run = await launched({ via: 'npx tsx' });
    const p = pidsOf(run);
    process.kill(p.top, sig);
    await expectAllGone(run, [p.top, p.node, p.master, ...p.workers]);
  });

  it.each(['SIGTERM', 'SIGKILL'] as const)('and exits 1 with nginx\'s last log lines when the nginx master dies of %s', async (sig) => {
    const run = await launched();
    const p = pidsOf(run);
    process.kill(p.master, sig);
    await expectAllGone(run, [p.node, p.master, ...p.workers]);
    expect((await run.exit).code).toBe(1);
    expect(run.err()).toMatch(new RegExp(`nginx \\(pid ${p.master}\\) exited (on ${sig}|with code \\d+); last lines of .*error\\.log:\\n.+`));
  });

  it.skipIf(!hasSetpriv)('even when the node process is SIGKILLed: nginx dies with it (setpriv --pdeathsig)', async () => {
    const run = await launched();
    const p = pidsOf(run);
    process.kill(p.node, 'SIGKILL');
    await expectAllGone(run, [p.node, p.master, ...p.workers], { cleanExit: false });
  });
});

describe('ps', () => {
  const bin = findNginx({ quiet: true }).bin;
  const throughLoader = readFileSync(bin).subarray(0, 2).toString() === '#!';
  if (throughLoader) console.warn(`lifecycle: ${bin} is a script that runs nginx through the loader (no patchelf when it was provisioned): the ps test is skipped`);

  it.skipIf(throughLoader)('shows the gateway as "nginx: master process" and "nginx: worker process"', async () => {
    const run = await launched();
    const p = pidsOf(run);
    const args = (pid: number) => execFileSync('ps', ['-o', 'args=', '-p', String(pid)], { encoding: 'utf8' }).trim();
    const comm = (pid: number) => execFileSync('ps', ['-o', 'comm=', '-p', String(pid)], { encoding: 'utf8' }).trim();
    expect(args(p.master)).toMatch(/^nginx: master process /);
    expect(comm(p.master)).toBe('nginx');
    for (const w of p.workers) {
      expect(args(w)).toBe('nginx: worker process');
      expect(comm(w)).toBe('nginx');
    }
    process.kill(p.node, 'SIGTERM');
    await expectAllGone(run, [p.node, p.master, ...p.workers]);
  });
});

describe('npm run stop', () => {
  it('stops a gateway started in the background, refuses a second start in the same run folder, and is idempotent', async () => {
    const run = await launched();
    const p = pidsOf(run);
    const env = { ...process.env, GW_RUN_DIR: run.dir };

    const again = spawn('npx', ['tsx', 'scripts/run.ts'], { cwd: projectRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let againErr = '';
    again.stderr?.on('data', (d) => { againErr += d; });
    const againCode = await new Promise<number | null>((res) => again.once('exit', (c) => res(c)));
    expect(againCode).toBe(1);
    expect(againErr).toContain(`a gateway is already running from ${run.dir} (pid ${p.node})`);
    await expectServing(run);

    const stop = execFileSync('npx', ['tsx', 'scripts/run.ts', 'stop'], { cwd: projectRoot, env, encoding: 'utf8' });
    expect(stop).toContain(`stopped the gateway of ${run.dir} (pid ${p.node})`);
    await expectAllGone(run, [p.node, p.master, ...p.workers]);
    const second = execFileSync('npx', ['tsx', 'scripts/run.ts', 'stop'], { cwd: projectRoot, env, encoding: 'utf8' });
    expect(second).toContain('no gateway is running');
  });
});

describe('start-up', () => {
  let holder: Server | undefined;
  afterEach(async () => {
    if (holder) await new Promise((r) => holder!.close(r));
    holder = undefined;
  });

  it('fails with nginx\'s bind() error and exit 1 when another program holds the port, and leaves nothing behind', async () => {
    const port = await freePort();
    holder = createServer((s) => {
      s.on('error', () => undefined); // readiness probes connect and reset
      s.end('not the gateway\n');
    });
    await new Promise<void>((r) => holder!.listen(port, '127.0.0.1', () => r()));
    const run = await launch({ port });
    const { code } = await Promise.race([run.exit, sleep(60_000).then(() => ({ code: -1, signal: null }))]);
    expect(code).toBe(1);
    expect(run.out()).not.toMatch(/^gateway: /m);
    expect(run.err()).toContain(`[emerg] bind() to 127.0.0.1:${port} failed (98: Address already in use)`);
    expect(run.err()).toContain('GW_LISTEN');
    expect(await answers(run.mockPort), 'the mock started for the run is closed again').toBe(false);
    expect(processesNaming(run.dir)).toEqual([]);
  });

  it('starts no mock backend for a config of your own unless GW_MOCKS=1', async () => {
    const run = await launched({ mocks: 'unset' });
    expect(run.out()).not.toContain('mock vLLM');
    expect(await answers(run.mockPort)).toBe(false);
    const key = readFileSync(join(run.dir, 'dev-key'), 'utf8').trim();
    const res = await fetch(`http://127.0.0.1:${run.port}/v1/chat/completions`, {
      method: 'POST', headers: { authorization: `Bearer ${key}` }, body: JSON.stringify({ model: MODEL, messages: [] }),
    });
    expect([502, 503]).toContain(res.status); // the gateway is up; the backend it names is not
    process.kill(pidsOf(run).node, 'SIGTERM');
    await until('exit', () => run.exited());
  });

  it('rejects a GW_MOCKS value it does not know, naming the ones it does', async () => {
    const run = await launch({ mocks: 'yes' as '1' });
    expect((await run.exit).code).toBe(1);
    expect(run.err()).toContain('GW_MOCKS="yes": use 1');
  });
});

describe('the commands npm start prints', () => {
  function printed(run: Run): string[] {
    return run.out().split('\n').filter((l) => /^ {2}curl /.test(l)).map((l) => l.trim());
  }
  function sh(cmd: string, env: Record<string, string> = {}): string {
    return execFileSync('bash', ['-c', `${cmd} -s -o /dev/null -w '%{http_code}'`], { cwd: projectRoot, env: { ...process.env, ...env }, encoding: 'utf8' });
  }

  it('work as printed, from this folder: a chat completion with the dev key and the admin usage report', async () => {
    const run = await launched();
    const cmds = printed(run);
    expect(cmds).toHaveLength(2);
    expect(cmds[1]).toContain('/admin/usage');
    for (const c of cmds) expect(sh(c), c).toBe('200');
    expect(run.out()).toMatch(/Ctrl-C here or `GW_RUN_DIR=\S+ npm run stop` stops the gateway and the mock backends/);
    process.kill(pidsOf(run).node, 'SIGINT');
    await until('exit', () => run.exited());
  });

  it('name $GW_ADMIN_TOKEN and your own key when GW_ADMIN_TOKEN and GW_KEYS_FILE are set, never their values', async () => {
    const token = `adm-life-${process.pid}-secret`;
    const key = `sk-life-${process.pid}-secret`;
    const keysDir = mkdtempSync(join(tmpdir(), 'gw-life-keys-'));
    dirs.push(keysDir);
    chmodSync(keysDir, 0o755);
    const keysFile = join(keysDir, 'keys.json');
    const hash = execFileSync('node', ['-e', `process.stdout.write(require('crypto').createHash('sha256').update(${JSON.stringify(key)}).digest('hex'))`], { encoding: 'utf8' });
    writeFileSync(keysFile, JSON.stringify({ keys: [{ id: 'mine', models: '*', hash: `sha256:${hash}` }] }));
    const run = await launched({ env: { GW_ADMIN_TOKEN: token, GW_KEYS_FILE: keysFile } });
    const all = run.out() + run.err();
    expect(all).not.toContain(token);
    expect(all).not.toContain(key);
    expect(all).not.toContain('admin-token');
    expect(existsSync(join(run.dir, 'dev-key')), 'no dev key is made when GW_KEYS_FILE names the keys').toBe(false);
    const cmds = printed(run);
    expect(cmds[0]).toContain('$YOUR_KEY');
    expect(cmds[1]).toContain('$GW_ADMIN_TOKEN');
    expect(sh(cmds[0], { YOUR_KEY: key })).toBe('200');
    expect(sh(cmds[1], { GW_ADMIN_TOKEN: token })).toBe('200');
    process.kill(pidsOf(run).node, 'SIGTERM');
    await until('exit', () => run.exited());
  });
});

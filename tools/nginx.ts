/**
 * Starts a real nginx (master + workers) on its own prefix with a rendered config, and gives the
 * tests its logs. Stopping is graceful and always awaited; a failed start throws with the error log.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { FAILED_LINE } from '../njs/src/core/logText';
import { NginxRuntime } from './findNginx';

/**
 * error.log lines that mean something broke: [alert], [emerg], a crashed worker, an njs exception,
 * or a gateway handler that threw (the gateway's own format, core/logText.ts). The tests'
 * clean-log check (test/support/useGateway.ts) and the bench both use it.
 */
export const BAD_LOG = new RegExp('\\[alert\\]|\\[emerg\\]|exited on signal|js exception|SyntaxError|' + FAILED_LINE.source);

export interface NginxHandle {
  prefix: string;
  confPath: string;
  pid: number;
  errorLog(): string;
  accessLog(): string;
  /** Writes a new config (if given) and sends HUP; resolves when a new worker generation answers. */
  reload(conf?: string): Promise<void>;
  /** Graceful stop (QUIT), SIGKILL after `graceMs` (default 5 s). */
  stop(graceMs?: number): Promise<void>;
  /** Settles when the master process exits, for whatever reason. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface StartOptions {
  prefix: string;
  conf: string;
  host: string;
  port: number;
  env?: Record<string, string>;
  /**
   * Run nginx in its own process group: a Ctrl-C on the terminal then reaches only the caller, which
   * stops nginx gracefully, and workers orphaned by a killed master can be found (and are killed by
   * stop()) through the group.
   */
  detached?: boolean;
  /** Command that execs nginx, e.g. ['setpriv', '--pdeathsig', 'TERM'] (nginx keeps the pid). */
  argvPrefix?: string[];
  /** Registers the stop of this nginx as soon as it is spawned (see Lifetime). */
  life?: Lifetime;
}

/**
 * Owner of the resources a start makes: each is registered as soon as it exists (an nginx right
 * after its spawn, before the wait for its port), so a caller that gives up (a timed-out beforeAll)
 * can close the lifetime and stop what has started so far; whatever is registered after close()
 * is stopped at once.
 */
export interface Lifetime {
  closed: boolean;
  add(cleanup: () => Promise<void>): void;
  close(): Promise<void>;
}

export function newLifetime(): Lifetime {
  const fns: (() => Promise<void>)[] = [];
  const life: Lifetime = {
    closed: false,
    add(fn) {
      if (life.closed) void fn().catch(() => undefined);
      else fns.push(fn);
    },
    async close() {
      life.closed = true;
      while (fns.length) await fns.pop()!().catch(() => undefined);
    },
  };
  return life;
}

// Every nginx master this process started and has not seen exit: killed if the process exits
// first (a test worker torn down mid-start), so no master outlives the run.
const liveMasters = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of liveMasters) c.kill('SIGKILL');
});

/** Whether a process with this pid exists (EPERM: it does, owned by another user). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function waitForPort(host: string, port: number, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const ok = await new Promise<boolean>((res) => {
      const s = connect(port, host);
      s.once('connect', () => { s.destroy(); res(true); });
      s.once('error', () => res(false));
    });
    if (ok) return true;
    await sleep(50);
  }
  return false;
}

function readIf(p: string): string {
  return existsSync(p) ? readFileSync(p, 'utf8') : '';
}

/** `nginx -t` on a config text; returns {ok, output}. */
export function testConfig(rt: NginxRuntime, prefix: string, conf: string): { ok: boolean; output: string } {
  mkdirSync(join(prefix, 'logs'), { recursive: true });
  mkdirSync(join(prefix, 'tmp'), { recursive: true });
  const confPath = join(prefix, 'nginx.conf');
  writeFileSync(confPath, conf);
  const out = spawnSync(rt.bin, ['-t', '-p', prefix, '-c', confPath, '-e', join(prefix, 'logs/error.log')], { encoding: 'utf8' });
  return { ok: out.status === 0, output: `${out.stdout}${out.stderr}` };
}

/** The `pid` file a config names (nginx writes it only after every listen socket is bound). */
function pidFileOf(conf: string, prefix: string): string | null {
  const m = /^\s*pid\s+([^;\s]+)\s*;/m.exec(conf);
  if (!m) return null;
  return m[1].startsWith('/') ? m[1] : join(prefix, m[1]);
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // ESRCH: nothing of the group is left
  }
}

export async function startNginx(rt: NginxRuntime, opts: StartOptions): Promise<NginxHandle> {
  const { prefix } = opts;
  mkdirSync(join(prefix, 'logs'), { recursive: true });
  mkdirSync(join(prefix, 'tmp'), { recursive: true });
  const confPath = join(prefix, 'nginx.conf');
  writeFileSync(confPath, opts.conf);
  const errPath = join(prefix, 'logs/error.log');
  const args = ['-p', prefix, '-c', confPath, '-e', errPath, '-g', 'daemon off;'];
  const pidPath = pidFileOf(opts.conf, prefix);
  const cmd = [...(opts.argvPrefix ?? []), rt.bin, ...args];
  const child: ChildProcess = spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...opts.env }, detached: opts.detached === true });
  let stderr = '';
  child.stderr?.on('data', (d) => { stderr += d; });
  let exited = false;
  liveMasters.add(child);
  const exitedP = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.once('exit', (code, signal) => {
    exited = true;
    liveMasters.delete(child);
    res({ code, signal });
  }));
  const exitP = exitedP.then(() => undefined);
  const stopChild = async (graceMs: number) => {
    if (!exited) {
      child.kill('SIGQUIT');
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exitP;
      clearTimeout(t);
    }
    // Workers outlive a master killed with SIGKILL; in a group of their own they can still be found.
    if (opts.detached && child.pid) killGroup(child.pid);
  };
  opts.life?.add(() => stopChild(5_000));

  // A port that answers proves nothing on its own: another program may hold it while this nginx
  // retries bind() and gives up. nginx writes its pid file only once all its sockets are bound, so the
  // file holding this child's pid proves that what answers on the port is this nginx.
  const ours = async (): Promise<boolean> => {
    if (!(await waitForPort(opts.host, opts.port, 10_000))) return false;
    if (!pidPath) return true;
    const end = Date.now() + 10_000;
    while (Date.now() < end && !exited) {
      if (readIf(pidPath).trim() === String(child.pid)) return true;
      await sleep(25);
    }
    return false;
  };
  const up = await Promise.race([ours(), exitP.then(() => false)]);
  if (!up || exited) {
    if (!exited) child.kill('SIGKILL');
    await exitP;
    if (opts.detached && child.pid) killGroup(child.pid);
    throw new Error(`nginx failed to start (${rt.bin}):\n${stderr}\n${readIf(errPath).slice(-4000)}`);
  }

  const handle: NginxHandle = {
    prefix,
    confPath,
    pid: child.pid ?? -1,
    exited: exitedP,
    errorLog: () => readIf(errPath),
    accessLog: () => readIf(join(prefix, 'logs/access.log')),
    async reload(conf?: string) {
      if (conf !== undefined) writeFileSync(confPath, conf);
      const before = handle.errorLog().length;
      child.kill('SIGHUP');
      const end = Date.now() + 10_000;
      while (Date.now() < end) {
        const log = handle.errorLog().slice(before);
        if (/start worker process/.test(log)) return;
        if (/\[emerg\]/.test(log)) throw new Error(`nginx reload failed:\n${log}`);
        await sleep(25);
      }
      throw new Error('nginx reload did not start new workers within 10 s');
    },
    stop(graceMs = 5_000) {
      return stopChild(graceMs);
    },
  };
  return handle;
}

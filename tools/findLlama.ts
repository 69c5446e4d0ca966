/**
 * Finds llama.cpp's OpenAI-compatible server for the real-backend tier, and starts it:
 *   1. LLAMA_SERVER_BIN, if set (a wrong one is an error, not a fallback);
 *   2. `llama-server` on PATH;
 *   3. Debian sid's llama.cpp provisioned by scripts/provision-llama.sh into a cache folder
 *      ($GW_LLAMA_CACHE, default ~/.cache/njs-gateway/llama), once, under a lock.
 * Each candidate is proven by `llama-server --version`. Where none can run (no apt, no network, not
 * x86_64) the answer is a reason, which the tier prints when it skips; GW_REAL_BACKEND=require turns
 * that skip into a failure (CI machines that must run the tier).
 */
import { ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep } from './nginx';
import { which } from './which';

export interface LlamaRuntime {
  bin: string;
  /** e.g. "0.7.0 (build 11669, commit Debian)". */
  version: string;
  source: 'LLAMA_SERVER_BIN' | 'PATH' | 'provisioned';
}

export type LlamaFound = { ok: true; rt: LlamaRuntime } | { ok: false; reason: string };

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export function llamaCacheDir(): string {
  return process.env.GW_LLAMA_CACHE || join(homedir(), '.cache/njs-gateway/llama');
}

/** The version line of `bin --version`, or why it is not a usable llama-server. */
function probe(bin: string): { version: string } | string {
  const out = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 30_000 });
  if (out.error) return `cannot run: ${out.error.message}`;
  const text = `${out.stdout}${out.stderr}`;
  const v = /^version: (.+)$/m.exec(text);
  if (out.status !== 0 || !v) return `"${bin} --version" failed (exit ${out.status}): ${text.trim().split('\n').slice(-2).join(' | ')}`;
  return { version: v[1].trim() };
}

let cached: LlamaFound | undefined;

export function findLlama(opts: { provision?: boolean } = {}): LlamaFound {
  if (cached) return cached;
  const rejected: string[] = [];
  const check = (bin: string, source: LlamaRuntime['source']): LlamaRuntime | null => {
    const p = probe(bin);
    if (typeof p === 'string') {
      rejected.push(`${source} ${bin}: ${p}`);
      return null;
    }
    return { bin, version: p.version, source };
  };
  const done = (f: LlamaFound): LlamaFound => {
    cached = f;
    return f;
  };
  if (process.env.LLAMA_SERVER_BIN) {
    const rt = check(process.env.LLAMA_SERVER_BIN, 'LLAMA_SERVER_BIN');
    if (rt) return done({ ok: true, rt });
    throw new Error(`LLAMA_SERVER_BIN is not usable: ${rejected.join('; ')}. Point it at llama.cpp's llama-server, or unset it.`);
  }
  const onPath = which('llama-server');
  if (onPath) {
    const rt = check(onPath, 'PATH');
    if (rt) return done({ ok: true, rt });
  }
  const cache = llamaCacheDir();
  const wrapper = join(cache, 'bin/llama-server');
  // A cache that no longer runs (interrupted unpack, a deleted library) is provisioned again.
  if (opts.provision !== false && (!existsSync(wrapper) || typeof probe(wrapper) === 'string')) {
    process.stderr.write(`find-llama: provisioning Debian sid llama.cpp into ${cache} (once)\n`);
    try {
      execFileSync('bash', [join(projectRoot, 'scripts/provision-llama.sh'), cache], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 600_000 });
    } catch (e) {
      const err = e as { stderr?: Buffer; message: string };
      const tail = (err.stderr?.toString() ?? err.message).trim().split('\n').slice(-4).join(' | ');
      rejected.push(`provisioning failed: ${tail}`);
    }
  }
  if (existsSync(wrapper)) {
    const rt = check(wrapper, 'provisioned');
    if (rt) return done({ ok: true, rt });
  }
  return done({ ok: false, reason: rejected.length ? rejected.join('; ') : 'no llama-server on PATH and provisioning is off' });
}

export interface LlamaServerOptions {
  model: string;
  port: number;
  /** The model id the server reports and answers to (--alias). */
  alias: string;
  ctxSize?: number;
  threads?: number;
  parallel?: number;
  embeddings?: boolean;
  extraArgs?: string[];
  /** Seconds after which the server is ended whatever happens (default 900). */
  maxLifetimeS?: number;
}

export interface LlamaServer {
  port: number;
  url: string;
  process: ChildProcess;
  log(): string;
  /** Resolves when GET /health answers 200; throws with the server's log if it exits first. */
  ready(timeoutMs?: number): Promise<void>;
  exited(): boolean;
  stop(): Promise<void>;
}

export function startLlamaServer(rt: LlamaRuntime, o: LlamaServerOptions): LlamaServer {
  const args = [
    '-m', o.model, '--host', '127.0.0.1', '--port', String(o.port), '--alias', o.alias,
    '-c', String(o.ctxSize ?? 1024), '-t', String(o.threads ?? 1), '-np', String(o.parallel ?? 2),
    '--metrics', '--no-webui',
    ...(o.embeddings ? ['--embeddings', '--pooling', 'mean'] : []),
    ...(o.extraArgs ?? []),
  ];
  // LLAMA_ARG_* variables would silently override these flags.
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('LLAMA_ARG_')) env[k] = v;
  // A test run that dies (a killed vitest worker) must not leave servers behind for good: coreutils'
  // timeout ends the server after its lifetime, and passes our SIGTERM on before that.
  const life = String(o.maxLifetimeS ?? 900);
  const child = existsSync('/usr/bin/timeout')
    ? spawn('/usr/bin/timeout', ['-k', '5', life, rt.bin, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(rt.bin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  let exitedWith: string | null = null;
  const take = (b: Buffer) => { log = (log + b.toString('utf8')).slice(-200_000); };
  child.stdout!.on('data', take);
  child.stderr!.on('data', take);
  const exit = new Promise<void>((res) => child.once('exit', (code, sig) => { exitedWith = `exit ${code ?? sig}`; res(); }));
  const url = `http://127.0.0.1:${o.port}`;
  const srv: LlamaServer = {
    port: o.port,
    url,
    process: child,
    log: () => log,
    exited: () => exitedWith !== null,
    async ready(timeoutMs = 30_000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        if (exitedWith !== null) throw new Error(`llama-server (${o.alias}) ${exitedWith} before it was ready:\n${log.split('\n').slice(-25).join('\n')}`);
        const status = await fetch(`${url}/health`).then((r) => r.status, () => 0);
        if (status === 200) return;
        if (Date.now() > end) throw new Error(`llama-server (${o.alias}) not ready after ${timeoutMs} ms (last /health: ${status}):\n${log.split('\n').slice(-25).join('\n')}`);
        await sleep(50);
      }
    },
    async stop() {
      if (exitedWith !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exit;
      clearTimeout(t);
    },
  };
  return srv;
}

/**
 * `npm start`: runs the gateway in the foreground on 127.0.0.1:8080 (GW_LISTEN) with the built
 * bundle and the routing config (GW_CONFIG, default nginx/gateway.json), rendered into the run folder
 * (GW_RUN_DIR, default .run/: keys, logs, nginx.conf, pid files).
 *
 * Mock backends: with the shipped config (no GW_CONFIG), every upstream server on 127.0.0.1 that
 * nothing listens on gets a mock vLLM serving that upstream's models, so a machine with no GPU gets a
 * working gateway. With your own GW_CONFIG none start unless GW_MOCKS=1, so a mock never takes the
 * port of a vLLM that is still loading; GW_MOCKS=0 never starts them.
 *
 * Lifecycle: SIGINT, SIGTERM or SIGHUP (to this process, or to the npm that runs it: npm forwards the
 * first two, and the death of the parent is noticed) stops nginx and the mocks; nginx exiting on its
 * own stops this process with nginx's last error lines and exit code 1. `npm run stop` (this script
 * with the argument `stop`) stops a gateway started in the background, through <run dir>/run.pid.
 *
 * API keys are on: a dev key is made once into .run/dev-key (its hash into .run/dev-keys.json, the
 * GW_KEYS_FILE) and an admin token into .run/admin-token, unless GW_KEYS_FILE / GW_ADMIN_TOKEN(_FILE)
 * name your own; GW_AUTH=off runs without keys.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { loadConfig, renderConfig } from './gen-config.mjs';
import { NGINX_ENV, projectRoot, renderNginxConf } from '../tools/config';
import { findNginx } from '../tools/findNginx';
import { MockVllm, startMockVllm } from '../tools/mockVllm';
import { alive, NginxHandle, sleep, startNginx, waitForPort } from '../tools/nginx';
import { makeStateDir } from '../tools/stateDir';

const runDir = resolve(process.env.GW_RUN_DIR || join(projectRoot, '.run'));
const runPidFile = join(runDir, 'run.pid');
const nginxPidFile = join(runDir, 'logs/nginx.pid');
const errorLogFile = join(runDir, 'logs/error.log');

function say(m: string): void {
  process.stderr.write(`${process.argv[2] === 'stop' ? 'npm run stop' : 'npm start'}: ${m}\n`);
}

/** A path as the user should type it: relative to the current folder when inside it. */
function shown(p: string): string {
  const r = relative(process.cwd(), p);
  return r && !r.startsWith('..') && !isAbsolute(r) ? r : p;
}

// ---- processes: liveness and identity (a pid file may be stale and its pid reused) ----

/** The command line of a process, or null when it cannot be read (then identity is not checked). */
function cmdline(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    const out = spawnSync('ps', ['-o', 'args=', '-p', String(pid)], { encoding: 'utf8' });
    return out.status === 0 ? out.stdout.trim() : null;
  }
}

function readPid(file: string): number | null {
  if (!existsSync(file)) return null;
  const pid = Number(readFileSync(file, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

/** The pid of the run.ts that owns this run folder, if one is alive. */
function runningSupervisor(): number | null {
  const pid = readPid(runPidFile);
  if (pid === null || pid === process.pid || !alive(pid)) return null;
  const cmd = cmdline(pid);
  return cmd === null || /run\.ts/.test(cmd) ? pid : null;
}

/** The nginx master started from this run folder, if one is alive (e.g. its supervisor was SIGKILLed). */
function runningNginx(): number | null {
  const pid = readPid(nginxPidFile);
  if (pid === null || !alive(pid)) return null;
  const cmd = cmdline(pid);
  return cmd === null || (/nginx/.test(cmd) && cmd.includes(runDir)) ? pid : null;
}

function ppidOf(pid: number): number | null {
  if (pid === process.pid) return process.ppid;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return null;
  }
}

/**
 * This process and its ancestors up to the npm (or npx) that started it, nearest first; just this
 * process and its parent when there is no npm within a few levels or no /proc to find out.
 */
function ancestry(): number[] {
  const chain = [process.pid];
  let pid: number | null = process.ppid;
  for (let depth = 0; depth < 5 && pid !== null && pid > 1; depth++) {
    chain.push(pid);
    if (/^np[mx]\b|\/np[mx](-cli\.js)?\s/.test(cmdline(pid) ?? '')) return chain;
    pid = ppidOf(pid);
  }
  return [process.pid, process.ppid];
}

async function gone(pid: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!alive(pid)) return true;
    await sleep(50);
  }
  return !alive(pid);
}

// ---- `npm run stop` ----

async function stopCommand(): Promise<number> {
  const sup = runningSupervisor();
  if (sup !== null) {
    process.kill(sup, 'SIGTERM');
    if (!(await gone(sup, 20_000))) {
      say(`the gateway (pid ${sup}) did not stop within 20 s; kill -9 ${sup} ends it (nginx follows)`);
      return 1;
    }
    console.log(`stopped the gateway of ${shown(runDir)} (pid ${sup})`);
    return 0;
  }
  const master = runningNginx();
  if (master !== null) {
    process.kill(master, 'SIGQUIT');
    if (!(await gone(master, 20_000))) process.kill(master, 'SIGKILL');
    console.log(`stopped nginx of ${shown(runDir)} (pid ${master}; its supervisor was already gone)`);
    return 0;
  }
  console.log(`no gateway is running from ${shown(runDir)} (no live pid in ${shown(runPidFile)})`);
  return 0;
}

if (process.argv[2] === 'stop') process.exit(await stopCommand());
if (process.argv[2] !== undefined) {
  say(`unknown argument "${process.argv[2]}": run with no argument to start, or "stop"`);
  process.exit(2);
}

// ---- start ----

const other = runningSupervisor();
if (other !== null) {
  say(`a gateway is already running from ${shown(runDir)} (pid ${other}): \`npm run stop\` first, or set GW_RUN_DIR to another folder`);
  process.exit(1);
}

const mocks: MockVllm[] = [];
let starting: Promise<NginxHandle> | undefined;
let nginx: NginxHandle | undefined;
let stopping: Promise<never> | undefined;

function shutdown(code: number): Promise<never> {
  if (stopping) return stopping;
  stopping = (async () => {
    if (starting) nginx = await starting.catch(() => undefined);
    if (nginx) await nginx.stop();
    await Promise.all(mocks.map((m) => m.close()));
    if (readPid(runPidFile) === process.pid) rmSync(runPidFile, { force: true });
    process.exit(code);
  })();
  return stopping;
}

// Before anything starts, so a signal during start-up still stops what was started.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    // Ctrl-C reaches npm and this process at once, and npm forwards its copy: say it once
    if (!stopping) say(`${sig}: stopping nginx${mocks.length ? ' and the mock backends' : ''}`);
    void shutdown(0);
  });
}
// npm forwards SIGINT and SIGTERM to its child, which may be a shell that dies of them without
// passing them on (npx runs `sh -c tsx ...`, and tsx runs this file); npm itself dies on SIGHUP or
// SIGKILL and leaves its child running. Each of those re-parents a process of the chain from npm down
// to here, which is how it is noticed.
const chain = ancestry();
setInterval(() => {
  if (stopping) return;
  for (let i = 0; i + 1 < chain.length; i++) {
    if (ppidOf(chain[i]) !== chain[i + 1]) {
      say(`the process that started the gateway (pid ${chain[chain.length - 1]}) or one between it and this one (pid ${chain[i + 1]}) is gone: stopping`);
      void shutdown(0);
      return;
    }
  }
}, 500).unref();

mkdirSync(runDir, { recursive: true });
writeFileSync(runPidFile, `${process.pid}\n`);

try {
  await start();
} catch (e) {
  say((e as Error).message);
  await shutdown(1);
}

/** GW_MOCKS: "1" always, "0" never, unset: only for the shipped example config. */
function mocksWanted(configPath: string): boolean {
  const v = process.env.GW_MOCKS;
  if (v === '1') return true;
  if (v === '0') return false;
  if (v !== undefined && v !== '') throw new Error(`GW_MOCKS="${v}": use 1 (start mock backends) or 0 (never), or leave it unset`);
  return resolve(configPath) === join(projectRoot, 'nginx/gateway.json');
}

function secretFile(name: string, make: () => string): string {
  const p = join(runDir, name);
  if (!existsSync(p)) writeFileSync(p, make(), { mode: 0o600 });
  return readFileSync(p, 'utf8').trim();
}

/** Only the lines that say what went wrong, out of nginx's stderr and error log. */
function nginxErrors(text: string): string {
  const seen: Record<string, true> = {};
  const lines: string[] = [];
  for (const raw of text.split('\n')) {
    // stderr and the error log say the same things; the log's timestamp and pid make them look new
    const l = raw.replace(/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d \[(\w+)\] \d+#\d+: /, 'nginx: [$1] ');
    if (!/\[(emerg|alert|crit|error)\]/.test(l) || seen[l]) continue;
    seen[l] = true;
    lines.push(l);
  }
  return (lines.length ? lines.slice(-8) : text.trim().split('\n').slice(-8)).join('\n');
}

function setprivPrefix(): string[] {
  // nginx gets SIGTERM if this process dies without cleaning up (SIGKILL, a crash): no orphan gateway.
  const probe = spawnSync('setpriv', ['--help'], { encoding: 'utf8' });
  return probe.status === 0 && /--pdeathsig/.test(probe.stdout) ? ['setpriv', '--pdeathsig', 'TERM'] : [];
}

async function start(): Promise<void> {
  const configPath = resolve(process.env.GW_CONFIG || join(projectRoot, 'nginx/gateway.json'));
  const listen = process.env.GW_LISTEN || '127.0.0.1:8080';
  const [host, portText] = listen.split(/:(?=\d+$)/);
  if (!portText) throw new Error(`GW_LISTEN="${listen}": use address:port, e.g. 127.0.0.1:8080`);
  const withMocks = mocksWanted(configPath);
  const cfg = loadConfig(configPath);
  const rt = findNginx();

  if (withMocks) {
    for (const [name, up] of Object.entries(cfg.upstreams)) {
      const models = Object.entries(cfg.models).filter(([, m]) => m.upstream === name).map(([n]) => n);
      for (const server of up.servers) {
        const m = /^(127\.0\.0\.1|localhost):(\d+)$/.exec(server.split(' ')[0]);
        if (!m) continue;
        if (await waitForPort('127.0.0.1', Number(m[2]), 200)) {
          console.log(`upstream "${name}": 127.0.0.1:${m[2]} already answers, using it (no mock)`);
          continue;
        }
        mocks.push(await startMockVllm({ name: `mock-${name}`, models, port: Number(m[2]), latencyMs: Number(process.env.GW_MOCK_LATENCY_MS ?? 20) }));
        console.log(`mock vLLM "${name}" on 127.0.0.1:${m[2]} serving ${models.join(', ')}`);
      }
    }
  }

  // The key state: only the workers' user may write it (nginx refuses a folder others could write).
  const stateDir = join(runDir, 'state');
  if (!process.env.GW_STATE_DIR) makeStateDir(stateDir, rt);
  const routesDir = join(runDir, 'routes');
  renderConfig(configPath, routesDir);

  const auth = process.env.GW_AUTH !== 'off';
  const ownKeys = process.env.GW_KEYS_FILE;
  const keysFile = ownKeys || join(runDir, 'dev-keys.json');
  if (!ownKeys) {
    const devKey = secretFile('dev-key', () => `sk-gw-${randomBytes(24).toString('base64url')}`);
    writeFileSync(keysFile, JSON.stringify({ keys: [{ id: 'dev', label: 'npm start', models: '*', hash: `sha256:${createHash('sha256').update(devKey).digest('hex')}` }] }, null, 1));
  }
  const tokenFile = process.env.GW_ADMIN_TOKEN_FILE;
  const adminEnv: Record<string, string> = {};
  if (process.env.GW_ADMIN_TOKEN) adminEnv.GW_ADMIN_TOKEN = process.env.GW_ADMIN_TOKEN;
  else if (!tokenFile) adminEnv.GW_ADMIN_TOKEN = secretFile('admin-token', () => randomBytes(24).toString('base64url'));
  // The admin API stays on loopback unless asked otherwise, even when the gateway listens on 0.0.0.0.
  const adminListen = process.env.GW_ADMIN_LISTEN || `127.0.0.1:${Number(portText) + 1}`;
  const conf = renderNginxConf({
    prefix: runDir, listen, adminListen, workers: Number(process.env.GW_WORKERS ?? 2), jsModule: rt.jsModule, routesDir,
    patch: auth ? undefined : (c) => c.replace('set $gw_auth_mode on;', 'set $gw_auth_mode off;'),
  });
  const env = { ...NGINX_ENV, GW_KEYS_FILE: keysFile, GW_STATE_DIR: process.env.GW_STATE_DIR || stateDir, ...adminEnv };

  starting = startNginx(rt, { prefix: runDir, conf, host, port: Number(portText), env, detached: true, argvPrefix: setprivPrefix() });
  try {
    nginx = await starting;
  } catch (e) {
    const msg = (e as Error).message;
    const hint = /Address already in use/.test(msg)
      ? `\nAnother program holds ${listen} or ${adminListen}: stop it, or pick free ports, e.g. GW_LISTEN=127.0.0.1:8090 (the admin API takes the next port; GW_ADMIN_LISTEN sets it).`
      : '';
    throw new Error(`nginx did not start:\n${nginxErrors(msg)}${hint}`);
  } finally {
    starting = undefined;
  }
  if (stopping) return;
  const handle = nginx;
  void handle.exited.then(({ code, signal }) => {
    if (stopping) return;
    const tail = handle.errorLog().trim().split('\n').slice(-10).join('\n');
    say(`nginx (pid ${handle.pid}) exited ${signal ? `on ${signal}` : `with code ${code}`}; last lines of ${shown(errorLogFile)}:\n${tail}`);
    void shutdown(1);
  });

  const base = `http://${listen}`;
  const keyHeader = !auth ? '' : ownKeys ? ' -H "Authorization: Bearer $YOUR_KEY"' : ` -H "Authorization: Bearer $(cat ${shown(join(runDir, 'dev-key'))})"`;
  const adminHeader = process.env.GW_ADMIN_TOKEN ? '"Authorization: Bearer $GW_ADMIN_TOKEN"'
    : tokenFile ? `"Authorization: Bearer $(cat ${tokenFile})"`
      : `"Authorization: Bearer $(cat ${shown(join(runDir, 'admin-token'))})"`;
  const stopHint = process.env.GW_RUN_DIR ? `GW_RUN_DIR=${process.env.GW_RUN_DIR} npm run stop` : 'npm run stop';
  console.log(`
gateway: ${base}  (nginx ${rt.version}, pid ${handle.pid}; config ${shown(configPath)}; logs in ${shown(join(runDir, 'logs'))})${auth ? '' : '\nAPI keys are OFF (GW_AUTH=off).'}${ownKeys && auth ? `\nAPI keys from ${ownKeys}: put one of them in $YOUR_KEY.` : ''}
In another terminal:
  curl ${base}/v1/chat/completions${keyHeader} --json '{"model":"${Object.keys(cfg.models)[0]}","messages":[{"role":"user","content":"hi"}]}'
  curl http://${adminListen}/admin/usage -H ${adminHeader}
Ctrl-C here or \`${stopHint}\` stops the gateway${mocks.length ? ' and the mock backends' : ''}.`);
}

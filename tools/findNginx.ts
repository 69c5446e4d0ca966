/**
 * Finds an nginx that can run the gateway (njs >= 0.8: js_shared_dict_zone, js_var, js_periodic):
 *   1. NGINX_BIN, if set (and nothing else: a wrong NGINX_BIN is an error, not a fallback); its js
 *      module is GW_NJS_MODULE if set, else ngx_http_js_module.so found beside the binary
 *      (<bin dir>/modules, <bin dir>/../modules, <bin dir>/../lib/nginx/modules), in its configured
 *      --modules-path or in the usual system folders;
 *   2. with GW_NGINX_SUITE=trixie|sid: that Debian suite's nginx + njs, provisioned by
 *      scripts/provision-nginx.sh into its cache folder (trixie: ~/.cache/njs-gateway/nginx, nginx
 *      1.26 + njs 0.8.9; sid: ~/.cache/njs-gateway/nginx-sid, nginx 1.30 + njs 1.0.x with QuickJS);
 *   3. otherwise `nginx` on PATH, then the provisioned trixie.
 * Each candidate is proven by `nginx -t` on a probe config that loads the js module, declares a
 * shared dict zone and, with GW_JS_ENGINE set, selects that engine. Reasons for rejecting candidates
 * are printed as nginx gave them (e.g. the dlopen() error of load_module), so a user sees why.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JsEngine, jsEngineFromEnv } from './config';
import { which } from './which';

export interface NginxRuntime {
  bin: string;
  /** Absolute path of ngx_http_js_module.so to load_module, or null when njs is built in. */
  jsModule: string | null;
  version: string;
  source: 'NGINX_BIN' | 'PATH' | 'provisioned';
  /** The engine GW_JS_ENGINE asked for and the probe proved (null: njs's default engine). */
  jsEngine: JsEngine | null;
  /** The Debian suite when provisioned (trixie, sid), else null. */
  suite: string | null;
}

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export const SUITES = ['trixie', 'sid'];

/** GW_NGINX_SUITE, or null when unset (then PATH first, trixie as the fallback). */
export function suiteFromEnv(): string | null {
  const s = process.env.GW_NGINX_SUITE;
  if (!s) return null;
  if (SUITES.indexOf(s) < 0) throw new Error(`GW_NGINX_SUITE=${s} is unknown: use ${SUITES.join(' or ')}`);
  return s;
}

/** The provisioning cache of a suite: trixie keeps the original path so existing caches stay valid. */
export function cacheDir(suite: string = suiteFromEnv() ?? 'trixie'): string {
  if (process.env.GW_NGINX_CACHE) return process.env.GW_NGINX_CACHE;
  return join(homedir(), suite === 'trixie' ? '.cache/njs-gateway/nginx' : `.cache/njs-gateway/nginx-${suite}`);
}

function versionOf(bin: string): { version: string; configure: string } | string {
  const out = spawnSync(bin, ['-V'], { encoding: 'utf8' });
  if (out.error) return `cannot run: ${out.error.message}`;
  const text = `${out.stdout}${out.stderr}`;
  const v = /nginx version: nginx\/(\d+\.\d+\.\d+)/.exec(text);
  if (!v) return `"${bin} -V" did not print an nginx version`;
  return { version: v[1], configure: text };
}

/** Proves the candidate with `nginx -t`; returns an error string, or null when it is usable. */
function probe(bin: string, jsModule: string | null, engine: JsEngine | null): string | null {
  const dir = mkdtempSync(join(tmpdir(), 'gw-probe-'));
  try {
    mkdirSync(join(dir, 'logs'));
    const conf = `${jsModule ? `load_module ${jsModule};\n` : ''}error_log ${dir}/logs/error.log;
pid ${dir}/logs/nginx.pid;
events {}
http {
  client_body_temp_path ${dir}/t1; proxy_temp_path ${dir}/t2; fastcgi_temp_path ${dir}/t3;
  uwsgi_temp_path ${dir}/t4; scgi_temp_path ${dir}/t5;
  js_shared_dict_zone zone=gw_probe:32k type=number;
  js_var $gw_probe;
  ${engine ? `js_engine ${engine};` : ''}
}
`;
    writeFileSync(join(dir, 'nginx.conf'), conf);
    const out = spawnSync(bin, ['-t', '-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'logs/error.log')], { encoding: 'utf8' });
    if (out.status === 0) return null;
    const text = `${out.stdout}${out.stderr}`;
    const line = /\[emerg\][^\n]*/.exec(text);
    if (/dlopen\(\)/.test(text) && line) return `js module cannot load: ${line[0]}`;
    if (/unknown directive "js_(shared_dict_zone|var)"/.test(text) && jsModule) return `njs older than 0.8 (no js_shared_dict_zone): ${line ? line[0] : ''}`;
    if (/unknown directive "js_/.test(text)) return `no njs module (js_* directives unknown${jsModule ? '' : '; no ngx_http_js_module.so found: set GW_NJS_MODULE'})`;
    if (engine && /invalid value "qjs"|js_engine/.test(text)) return `this njs has no QuickJS engine (${line ? line[0] : 'js_engine qjs refused'}); GW_JS_ENGINE=qjs needs an njs built with QuickJS, >= 1.0.1 for the gateway (docs/versions.md), e.g. GW_NGINX_SUITE=sid`;
    return line ? line[0] : text.trim().split('\n').pop() ?? 'nginx -t failed';
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function candidate(bin: string, source: NginxRuntime['source'], moduleDirs: string[], rejected: string[], engine: JsEngine | null): NginxRuntime | null {
  const v = versionOf(bin);
  if (typeof v === 'string') {
    rejected.push(`${source} ${bin}: ${v}`);
    return null;
  }
  let mods: string[];
  if (source === 'NGINX_BIN' && process.env.GW_NJS_MODULE) {
    if (!existsSync(process.env.GW_NJS_MODULE)) {
      rejected.push(`${source} ${bin}: GW_NJS_MODULE=${process.env.GW_NJS_MODULE} does not exist`);
      return null;
    }
    mods = [resolve(process.env.GW_NJS_MODULE)];
  } else {
    const binDir = dirname(resolve(bin));
    const dirs = moduleDirs.concat([join(binDir, 'modules'), join(binDir, '../modules'), join(binDir, '../lib/nginx/modules'),
      // scripts/provision-nginx.sh's wrapper (CACHE/bin/nginx) beside its unpacked root.
      join(binDir, '../root/usr/lib/nginx/modules')]);
    const mp = /--modules-path=(\S+)/.exec(v.configure);
    if (mp) dirs.push(mp[1]);
    const pre = /--prefix=(\S+)/.exec(v.configure);
    if (pre) dirs.push(join(pre[1], 'modules'));
    dirs.push('/usr/lib/nginx/modules', '/usr/lib64/nginx/modules', '/etc/nginx/modules', '/usr/local/nginx/modules');
    const found = dirs.map((d) => join(d, 'ngx_http_js_module.so')).find((p) => existsSync(p));
    mods = found ? [found] : [];
  }
  // The dynamic module found for this nginx first, then built-in njs (no load_module). The reason
  // kept is the module attempt's: its dlopen() error says what is wrong, the built-in attempt's
  // "unknown directive" does not.
  const attempts: (string | null)[] = mods.length ? [mods[0], null] : [null];
  const why: string[] = [];
  for (let i = 0; i < attempts.length; i++) {
    const m = attempts[i];
    const err = probe(bin, m, engine);
    if (err === null) return { bin, jsModule: m, version: v.version, source, jsEngine: engine, suite: null };
    why.push(err);
  }
  rejected.push(`${source} ${bin} (nginx ${v.version}${mods.length ? `, module ${mods[0]}` : ''}): ${why[0]}`);
  return null;
}

let cached: NginxRuntime | undefined;

export function findNginx(opts: { quiet?: boolean; provision?: boolean } = {}): NginxRuntime {
  if (cached) return cached;
  const say = (m: string) => { if (!opts.quiet) process.stderr.write(`find-nginx: ${m}\n`); };
  const engine = jsEngineFromEnv();
  const suite = suiteFromEnv();
  const rejected: string[] = [];
  const found = (rt: NginxRuntime) => {
    for (const r of rejected) say(`rejected ${r}`);
    say(`using ${rt.source} ${rt.bin} (nginx ${rt.version}${rt.suite ? `, Debian ${rt.suite}` : ''}${rt.jsModule ? `, njs module ${rt.jsModule}` : ', njs built in'}${rt.jsEngine ? `, js_engine ${rt.jsEngine}` : ''})`);
    cached = rt;
    return rt;
  };

  if (process.env.NGINX_BIN) {
    const rt = candidate(process.env.NGINX_BIN, 'NGINX_BIN', [], rejected, engine);
    if (rt) return found(rt);
    throw new Error(`NGINX_BIN is not usable: ${rejected.join('; ')}. Point it at nginx with njs >= 0.8 (and GW_NJS_MODULE at its ngx_http_js_module.so), or unset it.`);
  }
  if (!suite) {
    const onPath = which('nginx');
    if (onPath) {
      const rt = candidate(onPath, 'PATH', [], rejected, engine);
      if (rt) return found(rt);
    } else {
      rejected.push('PATH: no nginx');
    }
  }

  const name = suite ?? 'trixie';
  const cache = cacheDir(name);
  const wrapper = join(cache, 'bin/nginx');
  const moduleDir = join(cache, 'root/usr/lib/nginx/modules');
  // A cache from before nginx ran as itself runs it through the loader (ps shows only ld-linux):
  // provisioning again replaces that wrapper.
  const stale = existsSync(wrapper) && readFileSync(wrapper).includes('with its own loader and libraries');
  if ((!existsSync(wrapper) || stale) && opts.provision !== false) {
    say(`provisioning Debian ${name} nginx + njs into ${cache} (once)`);
    execFileSync('bash', [join(projectRoot, 'scripts/provision-nginx.sh'), cache], {
      stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, GW_NGINX_SUITE: name } });
  }
  if (existsSync(wrapper)) {
    const rt = candidate(wrapper, 'provisioned', [moduleDir], rejected, engine);
    if (rt) return found({ ...rt, suite: name });
  }
  for (const r of rejected) say(`rejected ${r}`);
  throw new Error(`No nginx with njs >= 0.8${engine ? ` and js_engine ${engine}` : ''} found: ${rejected.join('; ')}. Set NGINX_BIN (and GW_NJS_MODULE), GW_NGINX_SUITE=trixie|sid, or run scripts/provision-nginx.sh.`);
}

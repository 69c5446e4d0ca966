/**
 * Finds an nginx that can run the gateway (njs >= 0.8: js_shared_dict_zone, js_var, js_periodic):
 *   1. NGINX_BIN, if set (and nothing else: a wrong NGINX_BIN is an error, not a fallback);
 *   2. `nginx` on PATH;
 *   3. Debian trixie's nginx + njs provisioned by scripts/provision-nginx.sh into a cache folder
 *      ($GW_NGINX_CACHE, default ~/.cache/njs-gateway/nginx), once.
 * Each candidate is proven by `nginx -t` on a probe config that loads the js module and declares a
 * shared dict zone. Reasons for rejecting candidates are printed, so a user sees why.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface NginxRuntime {
  bin: string;
  /** Absolute path of ngx_http_js_module.so to load_module, or null when njs is built in. */
  jsModule: string | null;
  version: string;
  source: 'NGINX_BIN' | 'PATH' | 'provisioned';
}

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export function cacheDir(): string {
  return process.env.GW_NGINX_CACHE || join(homedir(), '.cache/njs-gateway/nginx');
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
function probe(bin: string, jsModule: string | null): string | null {
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
}
`;
    writeFileSync(join(dir, 'nginx.conf'), conf);
    const out = spawnSync(bin, ['-t', '-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'logs/error.log')], { encoding: 'utf8' });
    if (out.status === 0) return null;
    const text = `${out.stdout}${out.stderr}`;
    const line = /\[emerg\][^\n]*/.exec(text);
    if (/unknown directive "js_/.test(text)) return 'no njs module (js_* directives unknown)';
    if (/unknown directive "js_shared_dict_zone"|unknown directive "js_var"/.test(text)) return 'njs older than 0.8 (no js_shared_dict_zone)';
    return line ? line[0] : text.trim().split('\n').pop() ?? 'nginx -t failed';
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function candidate(bin: string, source: NginxRuntime['source'], moduleDirs: string[], rejected: string[]): NginxRuntime | null {
  const v = versionOf(bin);
  if (typeof v === 'string') {
    rejected.push(`${source} ${bin}: ${v}`);
    return null;
  }
  const mp = /--modules-path=(\S+)/.exec(v.configure);
  const dirs = [...moduleDirs];
  if (mp) dirs.push(mp[1]);
  const pre = /--prefix=(\S+)/.exec(v.configure);
  if (pre) dirs.push(join(pre[1], 'modules'));
  dirs.push('/usr/lib/nginx/modules', '/usr/lib64/nginx/modules', '/etc/nginx/modules', '/usr/local/nginx/modules');
  const mod = dirs.map((d) => join(d, 'ngx_http_js_module.so')).find((p) => existsSync(p)) ?? null;
  // Built-in njs first (no load_module), then the dynamic module found beside nginx.
  const attempts: (string | null)[] = /njs/.test(v.configure) && !mod ? [null] : mod ? [mod, null] : [null];
  let why = '';
  for (const m of attempts) {
    const err = probe(bin, m);
    if (err === null) return { bin, jsModule: m, version: v.version, source };
    why = err;
  }
  rejected.push(`${source} ${bin} (nginx ${v.version}): ${why}`);
  return null;
}

function which(name: string): string | null {
  for (const d of (process.env.PATH ?? '').split(':')) {
    const p = join(d, name);
    if (d && existsSync(p)) return p;
  }
  return null;
}

let cached: NginxRuntime | undefined;

export function findNginx(opts: { quiet?: boolean; provision?: boolean } = {}): NginxRuntime {
  if (cached) return cached;
  const say = (m: string) => { if (!opts.quiet) process.stderr.write(`find-nginx: ${m}\n`); };
  const rejected: string[] = [];
  const found = (rt: NginxRuntime) => {
    for (const r of rejected) say(`rejected ${r}`);
    say(`using ${rt.source} ${rt.bin} (nginx ${rt.version}${rt.jsModule ? `, njs module ${rt.jsModule}` : ', njs built in'})`);
    cached = rt;
    return rt;
  };

  if (process.env.NGINX_BIN) {
    const rt = candidate(process.env.NGINX_BIN, 'NGINX_BIN', [], rejected);
    if (rt) return found(rt);
    throw new Error(`NGINX_BIN is not usable: ${rejected.join('; ')}. Point it at nginx with njs >= 0.8, or unset it.`);
  }
  const onPath = which('nginx');
  if (onPath) {
    const rt = candidate(onPath, 'PATH', [], rejected);
    if (rt) return found(rt);
  } else {
    rejected.push('PATH: no nginx');
  }

  const cache = cacheDir();
  const wrapper = join(cache, 'bin/nginx');
  const moduleDir = join(cache, 'root/usr/lib/nginx/modules');
  // A cache from before nginx ran as itself runs it through the loader (ps shows only ld-linux):
  // provisioning again replaces that wrapper.
  const stale = existsSync(wrapper) && readFileSync(wrapper).includes('with its own loader and libraries');
  if ((!existsSync(wrapper) || stale) && opts.provision !== false) {
    say(`provisioning Debian trixie nginx + njs into ${cache} (once)`);
    execFileSync('bash', [join(projectRoot, 'scripts/provision-nginx.sh'), cache], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  if (existsSync(wrapper)) {
    const rt = candidate(wrapper, 'provisioned', [moduleDir], rejected);
    if (rt) return found(rt);
  }
  for (const r of rejected) say(`rejected ${r}`);
  throw new Error('No nginx with njs >= 0.8 found. Set NGINX_BIN, install the official nginx image/packages, or run scripts/provision-nginx.sh.');
}

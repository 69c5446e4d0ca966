/**
 * Renders nginx/nginx.conf.example, the file the README documents, into a runnable nginx.conf.
 * The tests, `npm start` and the benchmarks all run this same file, so the example cannot rot.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const nginxDir = join(projectRoot, 'nginx');
export const distDir = join(projectRoot, 'dist');

/**
 * Environment for every nginx this project starts (npm start, the tests, the bench, the compose
 * gateway). glibc serves allocations over 128 KB with mmap until frees teach it a higher threshold,
 * so a worker taking multi-MB bodies (nginx's body buffer, njs's copy of it) pays page faults on
 * each one for a while: a 2 MB OCR request cost a cold gateway worker ~17 ms of CPU, a warm one
 * ~2 ms. Fixed thresholds (64 MB mmap, 256 MB trim) make it ~2 ms from the first request. glibc reads
 * this when nginx starts; musl ignores it.
 */
export const NGINX_ENV: Record<string, string> = {
  GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=67108864:glibc.malloc.trim_threshold=268435456',
};

export interface RenderOptions {
  prefix: string;
  listen: string;
  /** Admin API address:port (default 127.0.0.1:<listen port + 1>, loopback whatever `listen` is). */
  adminListen?: string;
  workers?: number;
  jsModule: string | null;
  /** Folder holding routes.conf and gw-routes.js (default: dist/routes/). */
  routesDir?: string;
  distDir?: string;
  /** Folder of the includes (default: nginx/); a test that edits an include passes its copy. */
  includeDir?: string;
  /** Extra text for the end of http{} (e.g. a second server for a test). */
  httpExtra?: string;
  /**
   * The njs JS engine (`js_engine`): 'qjs' (QuickJS, njs >= 0.8.6 built with it) or 'njs'; default
   * GW_JS_ENGINE, else njs's own default (no directive, so nginx builds without QuickJS still run it).
   */
  jsEngine?: JsEngine | null;
  /** Last-chance edit of the rendered text, for a test that needs a variant. */
  patch?: (conf: string) => string;
}

export type JsEngine = 'njs' | 'qjs';

/** GW_JS_ENGINE, the one switch for tests, `npm start` and the bench; null when unset. */
export function jsEngineFromEnv(): JsEngine | null {
  const v = process.env.GW_JS_ENGINE;
  if (v === undefined || v === '') return null;
  if (v === 'njs' || v === 'qjs') return v;
  throw new Error(`GW_JS_ENGINE=${v} is not an njs engine: use qjs (QuickJS) or njs, or unset it`);
}

/**
 * GW_JS_CONTEXT_REUSE=<n>: `js_context_reuse n;` (njs >= 0.8.6; QuickJS contexts kept for reuse per
 * worker, default 128; 0 makes a context per request). For measuring (bench/engines.ts), not tuning.
 */
function contextReuseFromEnv(): string {
  const v = process.env.GW_JS_CONTEXT_REUSE;
  if (v === undefined || v === '') return '';
  if (!/^\d+$/.test(v)) throw new Error(`GW_JS_CONTEXT_REUSE=${v}: give a number of contexts (0 = none kept)`);
  return ` js_context_reuse ${v};`;
}

export function renderNginxConf(o: RenderOptions): string {
  const dist = o.distDir ?? distDir;
  const engine = o.jsEngine === undefined ? jsEngineFromEnv() : o.jsEngine;
  const values: Record<string, string> = {
    __JS_MODULE__: o.jsModule ? `load_module ${o.jsModule};` : '',
    __PREFIX__: o.prefix,
    __LISTEN__: o.listen,
    __ADMIN_LISTEN__: o.adminListen ?? `127.0.0.1:${Number(/:(\d+)$/.exec(o.listen)?.[1] ?? 0) + 1}`,
    __WORKERS__: String(o.workers ?? 2),
    __NGINX__: o.includeDir ?? nginxDir,
    __DIST__: dist,
    __ROUTES__: o.routesDir ?? join(dist, 'routes'),
    __JS_ENGINE__: (engine ? `js_engine ${engine};` : '') + contextReuseFromEnv(),
  };
  let conf = readFileSync(join(nginxDir, 'nginx.conf.example'), 'utf8').replace(/__[A-Z_]+__/g, (k) => {
    if (!(k in values)) throw new Error(`nginx.conf.example: unknown placeholder ${k}`);
    return values[k];
  });
  if (o.httpExtra) conf = conf.replace(/\n}\s*$/, `\n${o.httpExtra}\n}\n`);
  return o.patch ? o.patch(conf) : conf;
}

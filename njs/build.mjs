// Bundles njs/src/main.ts into dist/gateway.js for the njs engine (njs 0.8.x and 0.9.x), and renders
// the routing data (nginx/gateway.json or $GW_CONFIG) into dist/routes/ (routes.conf + gw-routes.js).
// njs resolves an import relative to the importing module before js_path, so the routing table must
// not sit beside gateway.js: a stack with its own routes folder would silently get the default one.
//
// njs 0.8: the engine rejects class, destructuring, default arguments, spread, for-of, generators
// and more (../shared/njs-facts.md §1). esbuild lowers what it can at target es2017; the `supported`
// flags below turn everything else into a build error instead of a SyntaxError inside nginx.
import * as esbuild from 'esbuild';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const NJS_UNSUPPORTED = ['class', 'destructuring', 'default-argument', 'array-spread', 'rest-argument',
  'for-of', 'generator', 'async-generator', 'for-await', 'new-target', 'object-rest-spread', 'optional-chain',
  'optional-catch-binding', 'logical-assignment', 'bigint', 'regexp-dot-all-flag', 'template-literal',
  'nullish-coalescing', 'exponent-operator', 'class-field', 'class-static-field', 'class-private-field',
  'import-meta', 'top-level-await', 'dynamic-import'];

// Runtime built-ins the engine lacks; esbuild cannot lower these, tsconfig's `lib` catches most of
// them at type-check, and this scan catches what slips through (e.g. an `any`-typed call).
const FORBIDDEN_RUNTIME = [
  // njs 0.8: "SyntaxError: await in arguments not supported" at nginx start; await into a variable first.
  /[\w)\]]\s*\(\s*await\b|,\s*await\b/,/\bnew (Map|Set|WeakMap|WeakRef|Proxy)\b/, /\bReflect\./, /\bObject\.(fromEntries|hasOwn)\b/,
  /\bstructuredClone\(/, /\bqueueMicrotask\(/, /\.(flatMap|findLast)\(/, /\bIntl\./];

const outdir = join(root, 'dist');
mkdirSync(outdir, { recursive: true });
const result = await esbuild.build({
  entryPoints: [join(root, 'njs/src/main.ts')],
  bundle: true,
  format: 'esm',
  target: 'es2017',
  supported: Object.fromEntries(NJS_UNSUPPORTED.map((f) => [f, false])),
  // gw-routes.js is generated data, loaded by nginx from js_path so a config change needs only a reload.
  external: ['fs', 'crypto', 'querystring', 'zlib', 'xml', 'gw-routes.js'],
  outfile: join(outdir, 'gateway.js'),
  legalComments: 'none',
  logLevel: 'warning',
  write: false,
});
const js = result.outputFiles[0].text;
const bad = FORBIDDEN_RUNTIME.filter((re) => re.test(js));
if (bad.length) {
  console.error(`njs/build: the bundle uses what njs 0.8 lacks: ${bad.join(', ')}. Use Object.create(null) maps, indexed loops, and await into a variable before a call.`);
  process.exit(1);
}
const { writeFileSync } = await import('node:fs');
writeFileSync(join(outdir, 'gateway.js'), js);

const { renderConfig } = await import('../scripts/gen-config.mjs');
const cfgPath = process.env.GW_CONFIG || join(root, 'nginx/gateway.json');
renderConfig(cfgPath, join(outdir, 'routes'));
console.log(`njs/build: dist/gateway.js (${js.length} bytes), routes from ${cfgPath}`);

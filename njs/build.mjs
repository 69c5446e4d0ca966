// Bundles the handlers of njs/handlers.json into dist/gateway.js, one file for both engines: njs
// (njs 0.8.x to 1.0.x) and QuickJS (js_engine qjs), and renders the routing data (nginx/gateway.json or $GW_CONFIG) into dist/routes/
// (routes.conf, gw-routes.json for its js_preload_object, gw-routes.js).
// njs resolves an import relative to the importing module before js_path, so the routing table must
// not sit beside gateway.js: a stack with its own routes folder would silently get the default one.
//
// njs 0.8: the engine rejects class, destructuring, default arguments, spread, for-of, generators
// and more (docs/njs-facts.md §1). esbuild lowers what it can at target es2017; the `supported`
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
  /\bstructuredClone\(/,
  // QuickJS has no require(): built-in modules come in through the top-level imports below.
  /\brequire\s*\(/, /\bqueueMicrotask\(/, /\.(flatMap|findLast)\(/, /\bIntl\./];

const outdir = join(root, 'dist');
mkdirSync(outdir, { recursive: true });
const { readFileSync, writeFileSync } = await import('node:fs');

// One module, dist/gateway.js, built so that a request's VM instantiates only the handlers it runs.
// njs 0.8 runs a module's top-level code again in the fresh VM of every request (twice for a proxied
// one: internalRedirect starts a new VM), creating every top-level function and table each time: a
// flat bundle of all handlers cost a small chat request ~1.25M instructions, this layout ~1.03M
// (docs/internals.md#njs-constraints; `npm run bench -- --only instructions` measures it).
// So each handler group of njs/handlers.json is bundled on its own into one branch of a loader
// function, and the module's top level holds only that loader and a dispatch table: a group's code
// is instantiated on the first call of one of its handlers in that VM, and only then. Groups that
// share a module each carry a copy; handlers talk through nginx variables, never module state.
// Separate bundles imported per location would do the same, at ~3 MB of worker memory per location.
// External modules: the routing table and the built-in modules (fs, crypto) are ES imports at the
// module's top level. QuickJS (js_engine qjs, njs >= 0.8.6) has no require(), so a lazy require()
// inside the group would throw there; a top-level import is the one form both engines accept. Only
// the built-ins some group actually uses are imported.
const EXTERNALS = { 'gw-routes.js': 'gw-routes.js' };
const BUILTINS = ['fs', 'crypto', 'querystring', 'zlib', 'xml'];
const { groups, direct, cold } = JSON.parse(readFileSync(join(root, 'njs/handlers.json'), 'utf8'));
// The routing table and the built-ins are imported once at the top: the group bundles see them as
// free variables (__gw_ext_*).
const usedBuiltins = Object.create(null);
const externals = {
  name: 'njs-externals',
  setup(b) {
    const filter = new RegExp('^(' + Object.keys(EXTERNALS).concat(BUILTINS).map((k) => k.replace(/[.]/g, '\\.')).join('|') + ')$');
    b.onResolve({ filter }, (a) => {
      if (!EXTERNALS[a.path]) usedBuiltins[a.path] = true;
      return { path: a.path, namespace: 'njs-external' };
    });
    b.onLoad({ filter: /.*/, namespace: 'njs-external' }, (a) => ({
      contents: 'export default ' + externalVar(a.path) + ';', loader: 'js' }));
  },
};
function externalVar(mod) {
  return '__gw_ext_' + mod.replace(/[^A-Za-z0-9]/g, '_');
}

// Cold modules (handlers.json `cold`: name -> file under njs/src): code that only rare paths run (an
// error, a key-file load). Every module a group bundles is instantiated in each request's VM, used or
// not, so a cold module is bundled apart and the groups import a stand-in whose functions load it
// into the VM on their first call (__gw_unit). A cold module exports functions only.
const coldFiles = Object.create(null);
for (const name of Object.keys(cold)) coldFiles[join(root, 'njs/src', cold[name])] = name;
function coldExports(name) {
  const file = join(root, 'njs/src', cold[name]);
  const text = readFileSync(file, 'utf8');
  const values = [...text.matchAll(/^export (?:const|let|var|class|default)\b\s*(\w*)/gm)].map((m) => m[1] || 'default');
  if (values.length) {
    console.error(`njs/build: cold module ${cold[name]} exports values (${values.join(', ')}); a cold module exports functions only: move them to a module the hot code imports.`);
    process.exit(1);
  }
  return [...text.matchAll(/^export function (\w+)/gm)].map((m) => m[1]);
}
function coldPlugin(self) {
  return {
    name: 'njs-cold',
    setup(b) {
      b.onResolve({ filter: /^\./ }, (a) => {
        const file = join(a.resolveDir, a.path.endsWith('.ts') ? a.path : a.path + '.ts');
        const name = coldFiles[file];
        return name !== undefined && name !== self ? { path: name, namespace: 'njs-cold' } : undefined;
      });
      b.onLoad({ filter: /.*/, namespace: 'njs-cold' }, (a) => ({
        loader: 'js',
        contents: coldExports(a.path).map((f) => 'export function ' + f + '(a, b, c, d, e, f) { return __gw_unit("' + a.path + '").' + f + '(a, b, c, d, e, f); }').join('\n'),
      }));
    },
  };
}
async function bundle(entry, sourcefile, self) {
  const result = await esbuild.build({
    stdin: { contents: entry, resolveDir: join(root, 'njs/src'), sourcefile, loader: 'ts' },
    bundle: true,
    format: 'iife',
    target: 'es2017',
    supported: Object.fromEntries(NJS_UNSUPPORTED.map((f) => [f, false])),
    plugins: [externals, coldPlugin(self)],
    legalComments: 'none',
    logLevel: 'warning',
    write: false,
  });
  return result.outputFiles[0].text;
}
const parts = [];
for (const m of Object.keys(EXTERNALS)) parts.push('import ' + externalVar(m) + ' from "' + EXTERNALS[m] + '";');
const table = [];
const loaders = [];
const directVars = [];
const directLoaders = [];
// A handler of a `direct` group (one every API request runs) is a top-level variable that its group's
// loader fills: no unit table, no exports object and no loader call once the group is in the VM.
const directVar = (h) => '__gw_h_' + h;
for (const g of Object.keys(groups)) {
  const names = groups[g];
  const isDirect = direct.indexOf(g) >= 0;
  const entry = names.map((h) => "import { " + h + " } from './handlers/" + h + "';\n" + (isDirect ? directVar(h) : '__gw_out.' + h) + ' = ' + h + ';').join('\n');
  const code = await bundle(entry, 'group-' + g + '.ts', null);
  // The export's members are created again in every request's VM: one per handler of the groups
  // every request runs (gw.auth), one getter for each other group (gw.ops.metrics).
  if (isDirect) {
    directLoaders.push('  if (name === "' + g + '") {\n' + code + '    return null;\n  }');
    for (const h of names) {
      directVars.push(directVar(h) + ' = null');
      table.push(h + ': function (a, b, c) { if (' + directVar(h) + ' === null) __gw_unit("' + g + '"); return ' + directVar(h) + '(a, b, c); }');
    }
  } else {
    loaders.push('  if (name === "' + g + '") {\n' + code + '    return __gw_units[name] = __gw_out;\n  }');
    table.push('get ' + g + '() { return __gw_unit("' + g + '"); }');
  }
}
for (const name of Object.keys(cold)) {
  if (groups[name]) throw new Error('njs/handlers.json: "' + name + '" names both a group and a cold module');
  const entry = coldExports(name).map((f) => "import { " + f + " } from './" + cold[name].replace(/\.ts$/, '') + "';\n__gw_out." + f + ' = ' + f + ';').join('\n');
  loaders.push('  if (name === "' + name + '") {\n' + (await bundle(entry, 'cold-' + name + '.ts', name)) + '    return __gw_units[name] = __gw_out;\n  }');
}
// One top-level function loads every group and cold module, each at most once per VM (per request):
// the top level is created anew in every VM, so it holds as few functions as it can.
parts.push('var __gw_units = null' + directVars.map((v) => ', ' + v).join('') + ';\nfunction __gw_unit(name) {\n' + directLoaders.join('\n') + '\n  if (__gw_units === null) __gw_units = {};\n  var u = __gw_units[name];\n  if (u !== undefined) return u;\n  var __gw_out = {};\n' + loaders.join('\n') + '\n  throw new Error("gw: no handler group or cold module " + name + " in this bundle (njs/handlers.json)");\n}');
// Imports go first in the module; the group loaders above reference them only when called.
for (const m of BUILTINS) if (usedBuiltins[m]) parts.unshift('import ' + externalVar(m) + ' from "' + m + '";');
parts.push('export default {\n  ' + table.join(',\n  ') + '\n};\n');
const js = parts.join('\n');
const bad = FORBIDDEN_RUNTIME.filter((re) => re.test(js));
if (bad.length) {
  console.error(`njs/build: the bundle uses what njs 0.8 or QuickJS lacks: ${bad.join(', ')}. Use Object.create(null) maps, indexed loops, await into a variable before a call, and ES imports instead of require().`);
  process.exit(1);
}
writeFileSync(join(outdir, 'gateway.js'), js);

const { renderConfig } = await import('../scripts/gen-config.mjs');
const cfgPath = process.env.GW_CONFIG || join(root, 'nginx/gateway.json');
renderConfig(cfgPath, join(outdir, 'routes'));
console.log(`njs/build: dist/gateway.js (${js.length} bytes, groups ${Object.keys(groups).join(' ')}), routes from ${cfgPath}`);

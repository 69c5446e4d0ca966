/**
 * The built bundle and every include, loaded by the real nginx + njs (`nginx -t` compiles the njs
 * module): syntax njs rejects that esbuild let through (e.g. `await` inside call arguments on
 * njs 0.8) fails here with nginx's own message, before any behaviour test runs.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { distDir, nginxDir, projectRoot, renderNginxConf } from '../../tools/config';
import { findNginx } from '../../tools/findNginx';
import { testConfig } from '../../tools/nginx';
import { requireBundle } from '../../tools/stack';

describe('bundle in real nginx', () => {
  it('nginx -t accepts nginx.conf.example with the built bundle', () => {
    requireBundle();
    const rt = findNginx({ quiet: true });
    const prefix = mkdtempSync(join(tmpdir(), 'gw-t-'));
    try {
      const r = testConfig(rt, prefix, renderNginxConf({ prefix, listen: '127.0.0.1:1', jsModule: rt.jsModule }));
      expect(r.output).toMatch(/test is successful/);
      expect(r.output).not.toMatch(/\[emerg\]|\[alert\]|SyntaxError/);
      expect(r.ok).toBe(true);
    } finally {
      rmSync(prefix, { recursive: true, force: true });
    }
  });

  const spec = JSON.parse(readFileSync(join(projectRoot, 'njs/handlers.json'), 'utf8')) as { direct: string[]; groups: Record<string, string[]>; cold?: Record<string, string> };
  const groups = spec.groups;
  // What nginx calls each handler: gw.<handler> in the groups every request runs, gw.<group>.<handler> in the others.
  const paths = Object.entries(groups).flatMap(([g, hs]) => hs.map((h) => (spec.direct.includes(g) ? h : g + '.' + h)));

  it('every gw.<handler> the nginx files name is in njs/handlers.json under its path, and every listed handler is used', () => {
    const named = new Set<string>();
    for (const f of readdirSync(nginxDir).filter((n) => n.endsWith('.conf') || n.endsWith('.example'))) {
      const text = readFileSync(join(nginxDir, f), 'utf8').replace(/#[^\n]*/g, '');
      for (const m of text.matchAll(/\bjs_(?:content|set|periodic|body_filter|header_filter)\s+(?:\$\w+\s+)?gw\.([\w.]+)/g)) named.add(m[1]);
    }
    expect([...named].filter((h) => !paths.includes(h))).toEqual([]);
    expect(paths.filter((h) => !named.has(h))).toEqual([]);
  });

  it('the default export holds one member per handler of the direct groups and one getter per other group', () => {
    requireBundle();
    const js = readFileSync(join(distDir, 'gateway.js'), 'utf8');
    const table = js.slice(js.indexOf('\nexport default {'));
    const members = [...table.matchAll(/^ {2}(get )?(\w+)(?:: function|\(\))/gm)].map((m) => (m[1] ? 'get ' : '') + m[2]);
    const want = Object.entries(groups).flatMap(([g, hs]) => (spec.direct.includes(g) ? hs : ['get ' + g]));
    expect(members.sort()).toEqual(want.sort());
  });

  it("the bundle's top level holds only group loaders and the dispatch table (njs re-runs it for every request)", () => {
    requireBundle();
    const js = readFileSync(join(distDir, 'gateway.js'), 'utf8');
    // Top-level statements start in column 0; everything else is inside a loader.
    const top = js.split('\n').filter((l) => /^[A-Za-z]/.test(l));
    // Imports: the routing table and the built-in modules (no require(): QuickJS lacks it).
    // The loader's table, then one variable per handler of a direct group (gw.auth), filled by its group's branch.
    const directs = spec.direct.flatMap((g) => groups[g]).map((h) => ', __gw_h_' + h + ' = null').join('');
    const allowed = [/^import __gw_ext_\w+ from "(gw-routes\.js|fs|crypto)";$/, new RegExp('^var __gw_units = null' + directs.replace(/\$/g, '\\$') + ';$'),
      /^function __gw_unit\(name\) \{$/, /^export default \{$/];
    expect(top.filter((l) => !allowed.some((re) => re.test(l)))).toEqual([]);
    // Every group and cold module is one branch of the loader, nothing is loaded at the top.
    const units = Object.keys(groups).concat(Object.keys(spec.cold ?? {}));
    expect([...js.matchAll(/^ {2}if \(name === "(\w+)"\) \{$/gm)].map((m) => m[1]).sort()).toEqual(units.sort());
  });

  it('calls no require(): QuickJS (js_engine qjs) has none, built-ins come in as top-level imports', () => {
    requireBundle();
    const js = readFileSync(join(distDir, 'gateway.js'), 'utf8');
    expect(js).not.toMatch(/\brequire\s*\(/);
    expect(js).toMatch(/^import __gw_ext_fs from "fs";$/m);
  });
});

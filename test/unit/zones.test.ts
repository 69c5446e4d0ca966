/** Every shared-dict zone the njs code names is declared, and missingZone() names the include that declares it. */
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { missingZone, zoneInclude } from '../../njs/src/core/zones';

const root = join(__dirname, '../..');

function declared(): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of readdirSync(join(root, 'nginx'))) {
    if (!f.endsWith('.conf')) continue;
    for (const m of readFileSync(join(root, 'nginx', f), 'utf8').matchAll(/^\s*js_shared_dict_zone\s+zone=(gw_[a-z_]+):/gm)) out.set(m[1], `nginx/${f}`);
  }
  return out;
}

function srcFiles(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) srcFiles(join(dir, e.name), out);
    else if (e.name.endsWith('.ts')) out.push(join(dir, e.name));
  }
  return out;
}

describe('shared-dict zones', () => {
  it('zoneInclude names the include that declares each zone, and only declared zones', () => {
    const decl = declared();
    expect(decl.size).toBeGreaterThan(5);
    for (const [name, file] of decl) {
      expect(zoneInclude(name), name).toBe(file);
      expect(missingZone(name).message).toContain(`include ${file}`);
    }
    expect(zoneInclude('gw_nope')).toBe('');
  });

  it('every zone the njs code names is declared in nginx/', () => {
    const decl = declared();
    const used = new Set<string>();
    for (const f of srcFiles(join(root, 'njs/src'))) {
      const text = readFileSync(f, 'utf8');
      for (const m of text.matchAll(/ngx\.shared\.(gw_[a-z_]+)|(?:missingZone|numberDict|ZONE =)\s*\(?\s*'(gw_[a-z_]+)'/g)) used.add(m[1] ?? m[2]);
    }
    expect(used.size).toBeGreaterThan(5);
    for (const z of used) expect(decl.has(z), `${z} is used by njs/src but declared nowhere in nginx/`).toBe(true);
  });
});

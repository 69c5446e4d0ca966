/**
 * The exact-match shortcuts in nginx/edge-http.conf's path maps: nginx tries a map's exact keys
 * (ignoring letter case) before its regexes, so an exact key must never give a value the regex would
 * not have given for the same input, in any letter case.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nginxDir } from '../../tools/config';

interface MapBlock { exact: { [key: string]: string }; regexes: { re: RegExp; value: string }[]; default: string }

/** The entries of `map <source> $<name> { ... }` in a conf file; PCRE's possessive `*+` as JS's `*`. */
function mapBlock(file: string, name: string): MapBlock {
  const conf = readFileSync(join(nginxDir, file), 'utf8');
  const block = new RegExp(`map \\S+ \\$${name} \\{\\n([\\s\\S]*?)\\n\\}`).exec(conf);
  if (!block) throw new Error(`nginx/${file} has no map for $${name}`);
  const out: MapBlock = { exact: {}, regexes: [], default: '' };
  for (const line of block[1].split('\n')) {
    const m = /^\s*("(?:[^"\\]|\\.)*"|\S+)\s+(\S+);\s*$/.exec(line);
    if (!m) continue;
    const key = m[1].startsWith('"') ? m[1].slice(1, -1) : m[1];
    if (key === 'default') out.default = m[2];
    else if (key.startsWith('~')) out.regexes.push({ re: new RegExp(key.slice(1).replace(/\*\+/g, '*')), value: m[2] });
    else out.exact[key] = m[2];
  }
  return out;
}

/** What the map would give for `input` from its regexes and default alone (nginx: first regex that matches). */
function byRegex(b: MapBlock, input: string): string {
  for (const r of b.regexes) if (r.re.test(input)) return r.value;
  return b.default;
}

const flipCase = (s: string) => s.replace(/[a-z]/gi, (c) => (c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase()));

describe('edge-http.conf path maps: exact keys agree with the regex', () => {
  for (const name of ['gw_uri_utf8', 'gw_path_canonical']) {
    it(`$${name}`, () => {
      const b = mapBlock('edge-http.conf', name);
      expect(b.regexes.length).toBeGreaterThan(0);
      expect(Object.keys(b.exact).length).toBeGreaterThan(0);
      for (const key of Object.keys(b.exact)) {
        for (const input of [key, key.toUpperCase(), flipCase(key)]) {
          expect(byRegex(b, input), `${input}`).toBe(b.exact[key]);
        }
      }
      // The regexes themselves still refuse what they must.
      for (const bad of ['/v1//chat/completions', '/v1/./chat/completions', '/v1/%2e%2e/x']) {
        if (name === 'gw_path_canonical') expect(byRegex(b, bad), bad).toBe('0');
      }
      if (name === 'gw_uri_utf8') expect(byRegex(b, '/v1/\xff')).toBe('0');
    });
  }
});

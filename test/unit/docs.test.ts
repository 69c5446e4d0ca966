/**
 * Documentation that leads somewhere: every relative link in the Markdown pages, every `docs/…`,
 * `README#…` or project file path named in docs, comments and user-facing error texts must exist,
 * down to the heading an anchor names.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { projectRoot } from '../../tools/config';

const SKIP_DIRS = new Set(['node_modules', 'dist', '.git', '.run', 'results', 'secrets']);

function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (SKIP_DIRS.has(name) || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}

const files = walk(projectRoot);
const markdown = files.filter((f) => f.endsWith('.md'));
const sources = files.filter((f) => /\.(ts|mjs|js|conf|example|sh|json|yml|Dockerfile)$/.test(f) && !f.endsWith('package-lock.json'));

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes. */
function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[`*_~]/g, '').replace(/[^\p{L}\p{N} -]/gu, '').replace(/ /g, '-');
}

const anchorsCache = new Map<string, Set<string>>();
function anchorsOf(file: string): Set<string> {
  let a = anchorsCache.get(file);
  if (!a) {
    a = new Set();
    let inFence = false;
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (/^```/.test(line)) inFence = !inFence;
      const m = !inFence && /^#{1,6}\s+(.*)$/.exec(line);
      if (m) a.add(slug(m[1]));
    }
    anchorsCache.set(file, a);
  }
  return a;
}

/** Why `target` (relative to `from`'s folder, or to the root when `fromRoot`) does not resolve, or null. */
function broken(from: string, target: string, fromRoot: boolean): string | null {
  const [path, anchor] = target.split('#');
  const abs = path === '' ? from : resolve(fromRoot ? projectRoot : dirname(from), path);
  if (!existsSync(abs)) return `${relative(projectRoot, from)}: ${target}: no such file`;
  if (anchor && abs.endsWith('.md') && !anchorsOf(abs).has(anchor)) return `${relative(projectRoot, from)}: ${target}: no heading #${anchor}`;
  return null;
}

/** Project paths as text mentions them; build output, globs and placeholders are not files. */
const PATH_RE = /(?<![\w./-])((?:njs|nginx|scripts|tools|test|bench|compose|docs)\/[A-Za-z0-9_./-]*[A-Za-z0-9_-]\.(?:ts|mjs|js|json|conf|example|sh|yml|md|Dockerfile)(?:#[a-z0-9-]+)?)(?![\w*<])/g;

describe('docs', () => {
  it('every relative Markdown link resolves, anchors included', () => {
    const bad: string[] = [];
    for (const f of markdown) {
      const text = readFileSync(f, 'utf8').replace(/```[\s\S]*?```/g, '');
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const t = m[1];
        if (/^[a-z]+:/i.test(t)) continue; // http:, https:, mailto:
        const why = broken(f, t, false);
        if (why) bad.push(why);
      }
    }
    expect(bad).toEqual([]);
  });

  it('every project path and README# reference in docs, comments and error texts exists', () => {
    const bad: string[] = [];
    for (const f of [...markdown, ...sources]) {
      const text = readFileSync(f, 'utf8');
      for (const m of text.matchAll(/README(#[a-z0-9-]+)/g)) {
        const why = broken(join(projectRoot, 'README.md'), m[1], true);
        if (why) bad.push(`${relative(projectRoot, f)}: README${m[1]}: no such heading`);
      }
      for (const m of text.matchAll(PATH_RE)) {
        const why = broken(f, m[1], true);
        if (why) bad.push(why);
      }
    }
    expect(bad).toEqual([]);
  });

  it('the README stays a front page: at most 200 lines, the two commands first', () => {
    const readme = readFileSync(join(projectRoot, 'README.md'), 'utf8');
    expect(readme.split('\n').length).toBeLessThanOrEqual(200);
    const firstBlock = /```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
    expect(firstBlock).toMatch(/npm start/);
    expect(firstBlock).toMatch(/npm test/);
  });
});

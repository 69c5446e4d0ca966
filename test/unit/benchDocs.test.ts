// docs/benchmarks.md's marked tables are generated from bench/latest.json (bench/docs.ts): this fails
// when someone edits one by hand or publishes a run without `npm run bench:docs`.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { applyBlocks, blockNames, DOC_PATH, readLatest, renderBlocks } from '../../bench/docs';

const doc = readFileSync(DOC_PATH, 'utf8');

describe('docs/benchmarks.md generated tables', () => {
  it('match what bench/latest.json gives (fix: npm run bench:docs)', () => {
    const next = applyBlocks(doc, renderBlocks(readLatest()));
    // Compare block by block so a failure names the stale table instead of printing the whole page.
    const blocks = (s: string) => Object.fromEntries(Array.from(s.matchAll(/<!-- bench:([a-z0-9-]+) begin -->\n([\s\S]*?)<!-- bench:\1 end -->/g), (m) => [m[1], m[2]]));
    expect(blocks(doc)).toEqual(blocks(next));
    expect(next).toBe(doc);
  });

  it('has the tables of the published run, each once', () => {
    const names = blockNames(doc);
    expect(names).toEqual(expect.arrayContaining(['meta', 'goals', 'comparison', 'overload', 'instructions', 'extract']));
    expect(new Set(names).size).toBe(names.length);
    const begins = doc.match(/<!-- bench:[a-z0-9-]+ begin -->/g) ?? [];
    expect(begins.length, 'every begin marker needs its end marker').toBe(names.length);
  });

  it('a hand edit inside a block is put back, prose outside is kept', () => {
    const edited = doc.replace(/(<!-- bench:comparison begin -->\n[\s\S]*?\| small chat \| 1 \| )\d+/, '$1999999');
    expect(edited).not.toBe(doc);
    const prose = '\nA hand-written sentence between blocks.\n';
    const withProse = edited.replace('<!-- bench:goals end -->\n', `<!-- bench:goals end -->\n${prose}`);
    const fixed = applyBlocks(withProse, renderBlocks(readLatest()));
    expect(fixed).toContain(prose);
    expect(fixed.replace(prose, '')).toBe(doc);
  });

  it('refuses a block the snapshot has no data for, naming the fix', () => {
    const r = readLatest();
    const blocks = renderBlocks({ ...r, overload: null });
    expect(blocks.overload).toBeUndefined();
    expect(() => applyBlocks(doc, blocks)).toThrow(/bench:overload has no data.*--publish/);
  });
});

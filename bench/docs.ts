/**
 * `npm run bench:docs`: rewrites the generated tables of docs/benchmarks.md from bench/latest.json,
 * the committed snapshot of the last published run (`npm run bench:ci -- --publish`).
 *
 * A generated block sits between `<!-- bench:NAME begin -->` and `<!-- bench:NAME end -->`; everything
 * outside the markers is prose and left alone. The tables are cut out of the results markdown that
 * bench/report.ts writes for every run, so the docs and bench/results/<time>.md can never disagree on
 * a column or a rounding. test/unit/benchDocs.test.ts fails when a block was edited by hand.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { projectRoot } from '../tools/config';
import { BenchReport, markdown } from './report';

export const LATEST_PATH = join(projectRoot, 'bench/latest.json');
export const DOC_PATH = join(projectRoot, 'docs/benchmarks.md');

/** Block name → the start of the results-markdown heading whose section it shows. */
const SECTIONS: Record<string, string> = {
  goals: 'Goals',
  comparison: 'Gateway vs plain nginx vs direct',
  overload: 'Overload',
  instructions: 'Instructions per request',
  'instruction-features': 'Instructions per feature',
  realistic: 'Realistic latency',
  memory: 'Memory',
  extract: 'Model extraction',
};

/**
 * Blocks only the full profile measures (bench/scenarios.ts PROFILES): a snapshot of another profile
 * fills them with a sentence saying where the numbers come from, so the page can carry their markers
 * whichever profile was published last. A full snapshot without their data is still an error.
 */
const FULL_ONLY: Record<string, string> = {
  realistic: 'the realistic-latency cell (256 streams at a model server\'s pace)',
  memory: 'the memory stage (worker RSS with 32 concurrent 2 MB bodies)',
};

/** The results markdown cut at its `##`/`###` headings: heading text → body lines (trimmed). */
function sections(md: string): { heading: string; body: string }[] {
  const out: { heading: string; body: string[] }[] = [];
  for (const line of md.split('\n')) {
    const h = /^#{2,3} (.*)$/.exec(line);
    if (h) out.push({ heading: h[1], body: [] });
    else if (out.length) out[out.length - 1].body.push(line);
  }
  return out.map((s) => ({ heading: s.heading, body: s.body.join('\n').trim() }));
}

/** Every block the report has data for, by name (a block the run did not measure is absent). */
export function renderBlocks(r: BenchReport): Record<string, string> {
  const m = r.meta;
  const blocks: Record<string, string> = {
    meta: `Run ${m.time} (\`${m.profile}\` profile), commit ${m.versions.commit}; ${m.machine.cpu}, ${m.machine.cores} cores, `
      + `load average at start ${m.machine.loadavgAtStart.map((x) => x.toFixed(2)).join(' ')}; `
      + `nginx ${m.versions.nginx}, njs ${m.versions.njs}, node ${m.versions.node}; ${m.settings.rounds} rounds of ${m.settings.duration_s} s, medians.`,
  };
  const all = sections(markdown(r));
  for (const name of Object.keys(SECTIONS)) {
    const s = all.find((x) => x.heading.startsWith(SECTIONS[name]));
    if (s?.body) blocks[name] = `**${s.heading}**\n\n${s.body}`;
    else if (FULL_ONLY[name] && m.profile !== 'full') {
      blocks[name] = `_Not in this snapshot: ${FULL_ONLY[name]} runs in the full profile only; publish one with \`npm run bench -- --publish\`, then \`npm run bench:docs\`._`;
    }
  }
  return blocks;
}

const MARKER = /<!-- bench:([a-z0-9-]+) begin -->\n[\s\S]*?<!-- bench:\1 end -->/g;

/** The names of the generated blocks a document has, in order. */
export function blockNames(doc: string): string[] {
  return Array.from(doc.matchAll(MARKER), (x) => x[1]);
}

/** The document with every marked block replaced; a marked block the report cannot fill is an error. */
export function applyBlocks(doc: string, blocks: Record<string, string>): string {
  return doc.replace(MARKER, (_all, name: string) => {
    if (!(name in blocks)) {
      throw new Error(`docs block bench:${name} has no data in bench/latest.json (blocks: ${Object.keys(blocks).join(', ')}); `
        + 'publish a run that measures it (npm run bench:ci -- --publish) or remove the markers');
    }
    return `<!-- bench:${name} begin -->\n${blocks[name]}\n<!-- bench:${name} end -->`;
  });
}

export function readLatest(path = LATEST_PATH): BenchReport {
  return JSON.parse(readFileSync(path, 'utf8')) as BenchReport;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const doc = readFileSync(DOC_PATH, 'utf8');
  const next = applyBlocks(doc, renderBlocks(readLatest()));
  if (next !== doc) writeFileSync(DOC_PATH, next);
  process.stdout.write(`${DOC_PATH}: ${blockNames(doc).join(', ')} ${next === doc ? 'already up to date' : 'rewritten'} from ${LATEST_PATH}\n`);
}

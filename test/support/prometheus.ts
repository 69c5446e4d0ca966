/**
 * Reads a Prometheus text exposition (format 0.0.4) twice: with parse-prometheus-text-format (a
 * port of the official Python client's parser) and with a strict checker of the rules that parser
 * lets pass: one TYPE/HELP per family and before its samples, a family's lines contiguous, no
 * duplicate series, histogram buckets ascending and cumulative with +Inf equal to _count.
 * The package flattens histograms that carry labels (their labels, _sum and _count are lost), so
 * histogram values are read from the checker's own samples.
 */
import parsePrometheusTextFormat from 'parse-prometheus-text-format';

export interface ParsedFamily {
  name: string;
  help: string;
  type: string;
  metrics: { value?: string; labels?: Record<string, string>; buckets?: Record<string, string>; count?: string; sum?: string }[];
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = `[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"`;
const VALUE = '(?:[+-]?(?:\\d+\\.?\\d*(?:[eE][+-]?\\d+)?|\\.\\d+(?:[eE][+-]?\\d+)?)|[+-]Inf|NaN)';
const SAMPLE = new RegExp(`^(${NAME})(?:\\{((?:${LABEL})(?:,${LABEL})*,?)?\\})? (${VALUE})(?: -?\\d+)?$`);
const LABEL_G = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"/g;

function familyOf(sample: string, types: Map<string, string>): string {
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (sample.endsWith(suffix)) {
      const base = sample.slice(0, -suffix.length);
      const t = types.get(base);
      if (t === 'histogram' || (t === 'summary' && suffix !== '_bucket')) return base;
    }
  }
  return sample;
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  /** The package parser's families (counters and gauges read well from these). */
  fams: ParsedFamily[];
  /** Every sample line, as the strict checker read it. */
  samples: Sample[];
}

function unescapeLabel(v: string): string {
  return v.replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
}

/** Throws an Error naming the first violated rule. */
export function parseExposition(text: string): Exposition {
  const samples: Sample[] = [];
  if (!text.endsWith('\n')) throw new Error('exposition must end with a newline');
  const types = new Map<string, string>();
  const helps = new Set<string>();
  const closed = new Set<string>();
  const seen = new Set<string>();
  const hist = new Map<string, { les: number[]; counts: number[]; count?: number; sum?: boolean }>();
  let current: string | null = null;
  const lines = text.split('\n').slice(0, -1);
  lines.forEach((line, i) => {
    const at = `line ${i + 1} "${line}"`;
    const enter = (fam: string) => {
      if (fam !== current) {
        if (closed.has(fam)) throw new Error(`${at}: family ${fam} continues after other lines (must be contiguous)`);
        if (current !== null) closed.add(current);
        current = fam;
      }
    };
    if (line.startsWith('#')) {
      const m = new RegExp(`^# (HELP|TYPE) (${NAME}) ?(.*)$`).exec(line);
      if (!m) return; // a plain comment
      enter(m[2]);
      if (m[1] === 'TYPE') {
        if (!/^(counter|gauge|histogram|summary|untyped)$/.test(m[3])) throw new Error(`${at}: bad type`);
        if (types.has(m[2])) throw new Error(`${at}: second TYPE for ${m[2]}`);
        if (seen.has(`family:${m[2]}`)) throw new Error(`${at}: TYPE after samples of ${m[2]}`);
        types.set(m[2], m[3]);
      } else {
        if (helps.has(m[2])) throw new Error(`${at}: second HELP for ${m[2]}`);
        helps.add(m[2]);
      }
      return;
    }
    if (line.trim() === '') throw new Error(`${at}: blank line`);
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`${at}: not a valid sample line`);
    const fam = familyOf(m[1], types);
    enter(fam);
    seen.add(`family:${fam}`);
    const labels: [string, string][] = [...(m[2] ?? '').matchAll(LABEL_G)].map((x) => [x[1], x[2]]);
    samples.push({ name: m[1], labels: Object.fromEntries(labels.map((l) => [l[0], unescapeLabel(l[1])])), value: Number(m[3]) });
    const names = labels.map((l) => l[0]);
    if (new Set(names).size !== names.length) throw new Error(`${at}: repeated label name`);
    const id = m[1] + '{' + labels.map((l) => `${l[0]}=${l[1]}`).sort().join(',') + '}';
    if (seen.has(id)) throw new Error(`${at}: duplicate series`);
    seen.add(id);
    if (types.get(fam) === 'histogram') {
      const key = fam + '{' + labels.filter((l) => l[0] !== 'le').map((l) => `${l[0]}=${l[1]}`).sort().join(',') + '}';
      const h = hist.get(key) ?? { les: [], counts: [] };
      hist.set(key, h);
      const v = Number(m[3]);
      if (m[1].endsWith('_bucket')) {
        const le = labels.find((l) => l[0] === 'le');
        if (!le) throw new Error(`${at}: bucket without le`);
        const bound = le[1] === '+Inf' ? Infinity : Number(le[1]);
        if (h.les.length && !(bound > h.les[h.les.length - 1])) throw new Error(`${at}: le not ascending`);
        if (h.counts.length && v < h.counts[h.counts.length - 1]) throw new Error(`${at}: buckets not cumulative`);
        h.les.push(bound);
        h.counts.push(v);
      } else if (m[1].endsWith('_count')) h.count = v;
      else h.sum = true;
    }
  });
  for (const [key, h] of hist) {
    if (h.les[h.les.length - 1] !== Infinity) throw new Error(`${key}: no +Inf bucket`);
    if (h.count !== h.counts[h.counts.length - 1]) throw new Error(`${key}: _count ${h.count} differs from the +Inf bucket ${h.counts[h.counts.length - 1]}`);
    if (!h.sum) throw new Error(`${key}: no _sum`);
  }
  return { fams: parsePrometheusTextFormat(text) as ParsedFamily[], samples };
}

/** The value of one sample, by family name and exact labels; undefined when absent. */
export function sampleValue(fams: ParsedFamily[], name: string, labels: Record<string, string>): number | undefined {
  const f = fams.find((x) => x.name === name);
  const m = f?.metrics.find((x) => {
    const l = x.labels ?? {};
    return Object.keys(l).length === Object.keys(labels).length && Object.entries(labels).every(([k, v]) => l[k] === v);
  });
  return m?.value !== undefined ? Number(m.value) : undefined;
}

function sameLabels(a: Record<string, string>, b: Record<string, string>): boolean {
  return Object.keys(a).length === Object.keys(b).length && Object.entries(b).every(([k, v]) => a[k] === v);
}

/** A histogram series' count, sum and cumulative buckets (by `le`); undefined when absent. */
export function histogram(e: Exposition, name: string, labels: Record<string, string>): { count: number; sum: number; buckets: Record<string, number> } | undefined {
  const count = e.samples.find((x) => x.name === `${name}_count` && sameLabels(x.labels, labels));
  const sum = e.samples.find((x) => x.name === `${name}_sum` && sameLabels(x.labels, labels));
  if (!count || !sum) return undefined;
  const buckets: Record<string, number> = {};
  for (const b of e.samples) {
    if (b.name !== `${name}_bucket`) continue;
    const { le, ...rest } = b.labels;
    if (sameLabels(rest, labels)) buckets[le] = b.value;
  }
  return { count: count.value, sum: sum.value, buckets };
}

/**
 * Prometheus text exposition format (version 0.0.4), built from plain data: no `r`, no `ngx`.
 *
 * Counters and histograms live in a number shared dict (ngx/metricsStore.ts) under keys made here:
 *   <family> \n <label text>            a counter's value
 *   <family> \n <label text> \n b<i>    how many observations fell in bucket i (NOT cumulative:
 *                                       one `incr` per observation; rendering accumulates)
 *   <family> \n <label text> \n s       a histogram's sum
 * core/metrics.ts adds one more part, `\nB<i>` under gw_request_duration_seconds: one key for the
 * four bucket counts of a request whose times share bucket i (expandCombined turns it back into
 * `\nb<i>` keys before rendering; a renderer without it ignores the key).
 * The label text is already escaped (`model="a\"b",key_id="k1"`), and an escaped label value can
 * hold no raw newline, so "\n" separates the parts unambiguously.
 */

export type MetricType = 'counter' | 'gauge' | 'histogram';

export interface Family {
  name: string;
  type: MetricType;
  help: string;
  /** Histogram upper bounds in ascending order, without +Inf. */
  buckets?: number[];
}

/** A sample computed at scrape time (gauges, or counters read from another module's zone). */
export interface Sample {
  family: string;
  labels: string;
  value: number;
}

/** Latency buckets in seconds, from a cached answer to a slow OCR page on a busy GPU. */
export const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900];

/**
 * Label values may hold any UTF-8; the format escapes backslash, double quote and newline.
 * (njs 0.8 is an interpreter: three indexOf calls cost a quarter of one regex test; this runs for
 * every request in the log phase.)
 */
export function escapeLabel(v: string): string {
  if (v.indexOf('\\') < 0 && v.indexOf('"') < 0 && v.indexOf('\n') < 0) return v;
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** `a="x",b="y"` from parallel lists of names and raw values. */
export function labelText(names: string[], values: string[]): string {
  let s = '';
  for (let i = 0; i < names.length; i++) {
    if (i > 0) s += ',';
    s += names[i] + '="' + escapeLabel(values[i]) + '"';
  }
  return s;
}

/** A series' key in the number zone: a counter's whole key, and the prefix of a histogram's. */
export function seriesKey(family: string, labels: string): string {
  return family + '\n' + labels;
}

/** Index of the first bucket whose bound is >= v; buckets.length means +Inf. */
export function bucketIndex(buckets: number[], v: number): number {
  for (let i = 0; i < buckets.length; i++) {
    if (v <= buckets[i]) return i;
  }
  return buckets.length;
}

/** A histogram bucket's key, from the histogram's seriesKey. */
export function bucketKey(series: string, index: number): string {
  return series + '\nb' + index;
}

/** A histogram's sum key, from its seriesKey. */
export function sumKey(series: string): string {
  return series + '\ns';
}

/** Go's strconv.ParseFloat reads what JS String() writes, except the infinities and NaN. */
export function formatValue(v: number): string {
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (v !== v) return 'NaN';
  return String(v);
}

function withLabel(labels: string, extra: string): string {
  return '{' + (labels === '' ? extra : labels + ',' + extra) + '}';
}

function braces(labels: string): string {
  return labels === '' ? '' : '{' + labels + '}';
}

interface HistSeries {
  counts: number[];
  sum: number;
}

/**
 * Renders every family in `families` order: HELP and TYPE once, then its series sorted by label
 * text, so a family's lines are contiguous as the format requires. Stored keys of families that
 * are not listed are ignored (a metric retired by an upgrade, still in the zone after a reload).
 */
export function renderExposition(families: Family[], stored: [string, number][], computed: Sample[]): string {
  const counters: { [family: string]: { [labels: string]: number } } = Object.create(null);
  const hists: { [family: string]: { [labels: string]: HistSeries } } = Object.create(null);
  const byName: { [name: string]: Family } = Object.create(null);
  for (let i = 0; i < families.length; i++) byName[families[i].name] = families[i];

  for (let i = 0; i < stored.length; i++) {
    const key = stored[i][0];
    const value = stored[i][1];
    const a = key.indexOf('\n');
    if (a < 0) continue;
    const fam = byName[key.slice(0, a)];
    if (fam === undefined) continue;
    const b = key.indexOf('\n', a + 1);
    const labels = b < 0 ? key.slice(a + 1) : key.slice(a + 1, b);
    if (fam.type !== 'histogram') {
      if (b >= 0) continue;
      const c = counters[fam.name] || (counters[fam.name] = Object.create(null));
      c[labels] = (c[labels] || 0) + value;
      continue;
    }
    if (b < 0) continue;
    const nb = (fam.buckets as number[]).length + 1;
    const h = hists[fam.name] || (hists[fam.name] = Object.create(null));
    let series = h[labels];
    if (series === undefined) {
      const counts: number[] = [];
      for (let j = 0; j < nb; j++) counts.push(0);
      series = h[labels] = { counts: counts, sum: 0 };
    }
    const part = key.slice(b + 1);
    if (part === 's') series.sum += value;
    else if (part.charAt(0) === 'b') {
      const idx = Number(part.slice(1));
      if (idx >= 0 && idx < nb) series.counts[idx] += value;
    }
  }
  for (let i = 0; i < computed.length; i++) {
    const s = computed[i];
    const c = counters[s.family] || (counters[s.family] = Object.create(null));
    c[s.labels] = (c[s.labels] || 0) + s.value;
  }

  const out: string[] = [];
  for (let i = 0; i < families.length; i++) {
    const f = families[i];
    out.push('# HELP ' + f.name + ' ' + f.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n'));
    out.push('# TYPE ' + f.name + ' ' + f.type);
    if (f.type !== 'histogram') {
      const c = counters[f.name];
      if (c === undefined) continue;
      const keys = Object.keys(c).sort();
      for (let j = 0; j < keys.length; j++) out.push(f.name + braces(keys[j]) + ' ' + formatValue(c[keys[j]]));
      continue;
    }
    const h = hists[f.name];
    if (h === undefined) continue;
    const bounds = f.buckets as number[];
    const keys = Object.keys(h).sort();
    for (let j = 0; j < keys.length; j++) {
      const series = h[keys[j]];
      let acc = 0;
      for (let k = 0; k <= bounds.length; k++) {
        acc += series.counts[k];
        const le = k < bounds.length ? formatValue(bounds[k]) : '+Inf';
        out.push(f.name + '_bucket' + withLabel(keys[j], 'le="' + le + '"') + ' ' + formatValue(acc));
      }
      out.push(f.name + '_sum' + braces(keys[j]) + ' ' + formatValue(series.sum));
      out.push(f.name + '_count' + braces(keys[j]) + ' ' + formatValue(acc));
    }
  }
  return out.join('\n') + '\n';
}

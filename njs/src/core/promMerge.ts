/**
 * Merges several backends' own Prometheus text (vLLM's /metrics) into one exposition: every sample
 * gets the labels gw_upstream and gw_server first, and each metric family is written once (HELP and
 * TYPE from the first backend that had them) with the samples of all backends under it, as the text
 * format requires a family's lines to be contiguous. Families named gw_* are dropped (the gateway's
 * own names). Lines that are not samples, HELP or TYPE are dropped.
 */

export interface BackendText {
  upstream: string;
  server: string;
  text: string;
}

interface MergedFamily {
  help: string | null;
  type: string | null;
  samples: string[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const SUFFIXES = ['_bucket', '_sum', '_count', '_total', '_created', '_info', '_gsum', '_gcount'];

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Index just past the `}` closing the label set that opens at `open`, or -1. */
function labelsEnd(line: string, open: number): number {
  let inStr = false;
  for (let i = open + 1; i < line.length; i++) {
    const c = line.charAt(i);
    if (inStr) {
      if (c === '\\') i++;
      else if (c === '"') inStr = false;
    } else if (c === '"') inStr = true;
    else if (c === '}') return i + 1;
  }
  return -1;
}

function familyOf(sample: string, current: string | null): string {
  if (current === null) return sample;
  if (sample === current) return current;
  if (sample.slice(0, current.length) === current) {
    const rest = sample.slice(current.length);
    if (SUFFIXES.indexOf(rest) >= 0) return current;
  }
  return sample;
}

export function mergeBackendMetrics(sources: BackendText[]): string {
  const order: string[] = [];
  const fams: { [name: string]: MergedFamily } = Object.create(null);
  function fam(name: string): MergedFamily {
    let f = fams[name];
    if (f === undefined) {
      f = fams[name] = { help: null, type: null, samples: [] };
      order.push(name);
    }
    return f;
  }
  for (let s = 0; s < sources.length; s++) {
    const src = sources[s];
    const extra = 'gw_upstream="' + escapeLabel(src.upstream) + '",gw_server="' + escapeLabel(src.server) + '"';
    const lines = src.text.split('\n');
    let current: string | null = null;
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i].replace(/\r$/, '');
      if (line === '') continue;
      if (line.charAt(0) === '#') {
        const m = /^#\s+(HELP|TYPE)\s+([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\s+(.*))?$/.exec(line);
        if (m === null) continue;
        current = m[2];
        const f = fam(m[2]);
        if (m[1] === 'HELP' && f.help === null) f.help = m[3] !== undefined ? m[3] : '';
        if (m[1] === 'TYPE' && f.type === null) f.type = m[3] !== undefined ? m[3].trim() : 'untyped';
        continue;
      }
      const nm = NAME.exec(line);
      if (nm === null) continue;
      const name = nm[0];
      let rest = line.slice(name.length);
      let labels = extra;
      if (rest.charAt(0) === '{') {
        const end = labelsEnd(rest, 0);
        if (end < 0) continue;
        const inner = rest.slice(1, end - 1).trim();
        labels = inner === '' ? extra : extra + ',' + inner;
        rest = rest.slice(end);
      }
      if (!/^\s+\S/.test(rest)) continue;
      fam(familyOf(name, current)).samples.push(name + '{' + labels + '}' + rest);
    }
  }
  const out: string[] = [];
  for (let i = 0; i < order.length; i++) {
    const name = order[i];
    const f = fams[name];
    if (name.slice(0, 3) === 'gw_' || f.samples.length === 0) continue;
    if (f.help !== null) out.push('# HELP ' + name + ' ' + f.help);
    if (f.type !== null) out.push('# TYPE ' + name + ' ' + f.type);
    for (let j = 0; j < f.samples.length; j++) out.push(f.samples[j]);
  }
  return out.length > 0 ? out.join('\n') + '\n' : '';
}

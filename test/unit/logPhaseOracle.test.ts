// biome-ignore-all lint/suspicious/noSelfCompare: the oracle is the njs code it replaced, where `v !== v` is the NaN test.
// biome-ignore-all lint/correctness/noUnusedVariables: the oracle keeps the njs code's `catch (e)` bindings.
/**
 * The log phase's recorders (core/metrics.ts requestIncrements, core/usageLedger.ts addToLedger)
 * against the implementations they replaced, kept here as the oracle: for random traffic both write
 * the same keys with the same values to the gw_metrics and gw_usage zones, so /metrics and
 * /admin/usage cannot tell them apart. The current ones read $gw_end_facts with the gw_end_plain
 * field (logging-http.conf's maps, read from the file and evaluated here as nginx does), the oracle
 * the fields it knew.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { END_FACTS, Fact } from '../../njs/src/core/endFacts';
import { latencyBucket, requestIncrements, sumTimes } from '../../njs/src/core/metrics';
import { escapeLabel } from '../../njs/src/core/promText';
import { addToLedger } from '../../njs/src/core/usageLedger';
import { projectRoot } from '../../tools/config';

interface Counters { incr(key: string, delta: number, init: number): number }

/** nginx's quoted-string escapes undone (ngx_conf_file.c: \" \' \\ \t \r \n). */
function unquote(t: string): string {
  if (t[0] !== '"') return t;
  return t.slice(1, -1).replace(/\\(["'\\tnr])/g, (_s, c: string) => ({ t: '\t', n: '\n', r: '\r' } as Record<string, string>)[c] ?? c);
}

/**
 * The `map` blocks of logging-http.conf as nginx evaluates them: exact keys first, then the regexes
 * in order (their captures usable as ${1}), then default; values and sources may name variables.
 */
function confMaps(): (name: string, vars: Record<string, string>) => string {
  const conf = readFileSync(join(projectRoot, 'nginx/logging-http.conf'), 'utf8').replace(/#.*$/gm, '');
  const maps: Record<string, { source: string; entries: [string, string][] }> = {};
  const block = /map\s+("(?:[^"\\]|\\.)*"|\S+)\s+\$(\w+)\s*\{([\s\S]*?)\n\}/g;
  for (let b = block.exec(conf); b !== null; b = block.exec(conf)) {
    const tokens = b[3].match(/"(?:[^"\\]|\\.)*"|[^\s;]+|;/g) ?? [];
    const entries: [string, string][] = [];
    for (let i = 0; i + 2 < tokens.length + 1; i += 3) entries.push([unquote(tokens[i]), unquote(tokens[i + 1])]);
    maps[b[2]] = { source: unquote(b[1]), entries };
  }
  const evalMap = (name: string, vars: Record<string, string>): string => {
    const m = maps[name];
    if (m === undefined) throw new Error('no map $' + name + ' in logging-http.conf');
    const expand = (t: string, caps: string[]): string => t.replace(/\$\{?(\w+)\}?/g, (_s, v: string) =>
      /^\d+$/.test(v) ? caps[+v] ?? '' : v in vars ? vars[v] : maps[v] !== undefined ? evalMap(v, vars) : '');
    const src = expand(m.source, []);
    for (const [k, v] of m.entries) if (k[0] !== '~' && k !== 'default' && k === src) return expand(v, []);
    for (const [k, v] of m.entries) {
      if (k[0] !== '~') continue;
      const hit = new RegExp(k.slice(1)).exec(src);
      if (hit !== null) return expand(v, Array.from(hit));
    }
    for (const [k, v] of m.entries) if (k === 'default') return expand(v, []);
    return '';
  };
  return evalMap;
}

// ---- the oracle: the previous implementations, verbatim but for the facts they read ----------
const OLD = { status: 0, requestTime: 1, upstreamResponseTime: 2, upstreamHeaderTime: 3, stream: 4, queueMs: 5, ttftMs: 6,
  promptTokens: 7, completionTokens: 8, totalTokens: 9, errorCode: 10, msec: 11, model: 12 };

const COMBINED = '\nB';
function oldObserve(d: Counters, family: string, mb: string, ms: string, v: number): number {
  let dropped = 0;
  try {
    d.incr(family + mb + latencyBucket(v), 1, 0);
  } catch (e) {
    dropped++;
  }
  return dropped + oldSum(d, family, ms, v);
}
function oldSum(d: Counters, family: string, ms: string, v: number): number {
  if (!(v > 0)) return 0;
  try {
    d.incr(family + ms, v, 0);
  } catch (e) {
    return 1;
  }
  return 0;
}
function oldNonNegative(v: string): number {
  if (v === '') return NaN;
  const n = +v;
  return n >= 0 ? n : NaN;
}
function oldRequestIncrements(p: string[], keyId: string, d: Counters): number {
  const model = p[OLD.model];
  if (model === '' && p[OLD.errorCode] === '') return 0;
  let dropped = 0;
  // One test for both labels: they rarely need escaping, and each indexOf is a call.
  const both = model + keyId;
  const plain = both.indexOf('\\') < 0 && both.indexOf('"') < 0 && both.indexOf('\n') < 0;
  const m = '\nmodel="' + (plain ? model : escapeLabel(model)) + '"';
  const mb = m + '\nb';
  const ms = m + '\ns';
  const st = p[OLD.status];
  const c = st.length === 3 ? st[0] : '';
  try {
    d.incr('gw_requests_total' + m + ',status_class="' + (c >= '1' && c <= '5' ? c + 'xx' : 'other') + '",key_id="' + (plain ? keyId : escapeLabel(keyId)) + '"', 1, 0);
  } catch (e) {
    dropped++;
  }
  // nonNegative and sumTimes inline for the usual single value (no call); a list takes sumTimes.
  const rt = p[OLD.requestTime];
  const s = rt !== '' && +rt >= 0 ? +rt : NaN;
  if (model === '') {
    // A refusal before routing: its duration only.
    if (s >= 0) dropped += oldObserve(d, 'gw_request_duration_seconds', mb, ms, s);
    return dropped;
  }
  const ut = p[OLD.upstreamResponseTime];
  let upstream = ut === '' ? NaN : +ut;
  if (upstream !== upstream) upstream = sumTimes(ut);
  const ht = p[OLD.upstreamHeaderTime];
  let header = ht === '' ? NaN : +ht;
  if (header !== header) header = sumTimes(ht);
  const qt = p[OLD.queueMs];
  const queued = qt !== '' && +qt >= 0 ? +qt : NaN;
  const rb = s >= 0 ? latencyBucket(s) : -1;
  // The usual answered request: total, backend and header times in one bucket and no queue wait.
  // Those four bucket counts take ONE key (COMBINED, expanded at scrape time by expandCombined).
  if (rb >= 0 && upstream >= 0 && header >= 0 && !(queued > 0) && latencyBucket(upstream) === rb && latencyBucket(header) === rb) {
    try {
      d.incr('gw_request_duration_seconds' + m + COMBINED + rb, 1, 0);
    } catch (e) {
      dropped++;
    }
    // The sums inline (no call): this is the path nearly every request takes.
    try {
      if (s > 0) d.incr('gw_request_duration_seconds' + ms, s, 0);
    } catch (e) {
      dropped++;
    }
    try {
      if (upstream > 0) d.incr('gw_upstream_response_duration_seconds' + ms, upstream, 0);
    } catch (e) {
      dropped++;
    }
    try {
      if (header > 0) d.incr('gw_upstream_header_duration_seconds' + ms, header, 0);
    } catch (e) {
      dropped++;
    }
  } else {
    if (rb >= 0) dropped += oldObserve(d, 'gw_request_duration_seconds', mb, ms, s);
    if (upstream >= 0) dropped += oldObserve(d, 'gw_upstream_response_duration_seconds', mb, ms, upstream);
    if (header >= 0) dropped += oldObserve(d, 'gw_upstream_header_duration_seconds', mb, ms, header);
    // A wait is observed for requests that reached a backend or did wait (a queue timeout), not for
    // those refused before the queue (they would pile up as zero-second waits).
    if (queued > 0) dropped += oldObserve(d, 'gw_queue_wait_seconds', mb, ms, queued / 1000);
    else if (upstream >= 0) dropped += oldObserve(d, 'gw_queue_wait_seconds', mb, ms, 0);
  }
  if (p[OLD.stream] === '1') {
    const t = oldNonNegative(p[OLD.ttftMs]) / 1000;
    if (t >= 0) dropped += oldObserve(d, 'gw_time_to_first_token_seconds', mb, ms, t);
  }
  const pt = p[OLD.promptTokens];
  let n = pt !== '' && +pt >= 0 ? +pt : NaN;
  try {
    if (n > 0) d.incr('gw_tokens_total' + m + ',type="prompt"', n, 0);
  } catch (e) {
    dropped++;
  }
  const ct = p[OLD.completionTokens];
  n = ct !== '' && +ct >= 0 ? +ct : NaN;
  try {
    if (n > 0) d.incr('gw_tokens_total' + m + ',type="completion"', n, 0);
  } catch (e) {
    dropped++;
  }
  return dropped;
}
function oldCount(s: string): number {
  const n = +s;
  return n >= 0 && n % 1 === 0 && n < 1e21 ? n : parseInt(s, 10);
}
function oldTail(keyId: string, model: string): string {
  const k = keyId === '' ? '-' : keyId.indexOf('|') < 0 ? keyId : keyId.split('|').join('_');
  return '|' + k + '|' + model;
}
function oldAddToLedger(d: Counters, day: string, keyId: string, model: string, status: number,
  prompt: string, completion: string, total: string): void {
  if (model === '') return;
  const head = day + '|';
  const tail = oldTail(keyId, model);
  d.incr(head + 'r' + tail, 1, 0);
  if (status >= 400) d.incr(head + 'e' + tail, 1, 0);
  if (prompt === '' && completion === '' && total === '') return;
  const p = prompt !== '' ? oldCount(prompt) : 0;
  const c = completion !== '' ? oldCount(completion) : 0;
  const t = total !== '' ? oldCount(total) : p + c;
  if (!(p >= 0 && c >= 0 && t >= 0)) return;
  if (p > 0) d.incr(head + 'p' + tail, p, 0);
  if (c > 0) d.incr(head + 'c' + tail, c, 0);
  // The row's total is p + c + x: x only when the response's total is not that sum.
  if (t !== p + c) d.incr(head + 'x' + tail, t - p - c, 0);
}
function oldRecordUsage(p: string[], keyId: string, d: Counters): void {
  const model = p[OLD.model];
  if (model === '') return;
  let day = (+p[OLD.msec] / 86400) | 0;
  if (!(day > 0)) day = (Date.now() / 86400000) | 0;
  oldAddToLedger(d, '' + day, keyId, model, +p[OLD.status], p[OLD.promptTokens], p[OLD.completionTokens], p[OLD.totalTokens]);
}
// ----------------------------------------------------------------------------------------------

function zone(z: Record<string, number>, full: boolean): Counters {
  return {
    incr(k: string, v: number, init: number): number {
      if (full && !(k in z)) throw new Error('SharedMemoryError: no memory');
      z[k] = (z[k] ?? init) + v;
      return z[k];
    },
  };
}

const nginxMap = confMaps();

/** The two fact lines nginx would give for one request: today's (with gw_end_plain) and the oracle's. */
function lines(v: Record<string, string>): { now: string[]; old: string[] } {
  const now = END_FACTS.map((n) => (n === 'gw_end_plain' ? nginxMap('gw_end_plain', v) : v[n]));
  const old = END_FACTS.filter((n) => n !== 'gw_end_plain').map((n) => v[n]);
  return { now, old };
}

const label = fc.oneof(
  fc.constantFrom('', 'm', 'Qwen/Qwen2.5-1.5B-Instruct', 'team-a', 'jwt:auth0|123', 'a"b', 'a\\b', 'x\ny', '|', 'jwt:"|\\', 'é|ü'),
  fc.string({ unit: fc.constantFrom('a', '|', '"', '\\', '\n', 'é', ' ', '_'), maxLength: 6 }),
);
const time = fc.constantFrom('', '-', '0', '0.000', '0.001', '0.003', '0.005', '0.0051', '0.120', '2', '0.010, 0.250 : 1.000', '-, 0.500', '900', '901', '-1', 'x');
const count = fc.constantFrom('', '0', '3', '11', '1000000', '7x', '-2', '1.5', 'x', '1e3', ' 4');
const request = fc.record({
  status: fc.constantFrom('200', '201', '400', '404', '429', '499', '500', '503', '000', '600', '99', ''),
  request_time: time, upstream_response_time: time, upstream_header_time: time,
  gw_stream: fc.constantFrom('0', '1', ''), gw_queue_ms: fc.constantFrom('0', '', '30', '1500', '-5', 'x'),
  gw_ttft_ms: fc.constantFrom('', '0', '250', '40000', 'x'),
  gw_prompt_tokens: count, gw_completion_tokens: count, gw_total_tokens: count,
  gw_error_code: fc.constantFrom('', 'model_not_found', 'queue_full'),
  msec: fc.constantFrom('1764608000.123', '1764694399.999', '0', '', 'x'),
  gw_model: label, gw_key_id: label,
});

describe('log phase recorders against the implementations they replaced', () => {
  it('gw_end_plain: 1 unless the model or the key id holds \\, ", a newline or |', () => {
    const plain = (model: string, keyId: string) => nginxMap('gw_end_plain', { gw_model: model, gw_key_id: keyId });
    for (const s of ['', 'm', 'Qwen/Qwen2.5-1.5B-Instruct', 'team-a.b_c', 'jwt:x', 'é', 'a b']) expect(plain(s, s)).toBe('1');
    for (const s of ['a|b', 'a"b', 'a\\b', 'a\nb', '|', '"', '\\', '\n']) {
      expect(plain(s, '')).toBe('0');
      expect(plain('m', s)).toBe('0');
    }
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 12 }), fc.string({ unit: 'binary', maxLength: 6 }), (model, keyId) => {
      expect(plain(model, keyId)).toBe(/[|"\\\n]/.test(model + keyId) ? '0' : '1');
    }), { seed: 2101, numRuns: 3000 });
  });

  it('metrics: the same keys and values in gw_metrics, a full zone drops the same updates', () => {
    fc.assert(fc.property(fc.array(request, { minLength: 1, maxLength: 8 }), fc.boolean(), (reqs, fill) => {
      const a: Record<string, number> = {};
      const b: Record<string, number> = {};
      for (let i = 0; i < reqs.length; i++) {
        const l = lines(reqs[i]);
        // Past the first request, a full zone (if drawn): only existing keys still count.
        const full = fill && i > 0;
        const da = requestIncrements(l.now, reqs[i].gw_key_id, zone(a, full));
        const db = oldRequestIncrements(l.old, reqs[i].gw_key_id, zone(b, full));
        expect(da).toBe(db);
      }
      expect(a).toEqual(b);
    }), { seed: 2102, numRuns: 3000 });
  });

  it('ledger: the same keys and values in gw_usage', () => {
    fc.assert(fc.property(fc.array(request, { minLength: 1, maxLength: 8 }), (reqs) => {
      const a: Record<string, number> = {};
      const b: Record<string, number> = {};
      for (const r of reqs) {
        const l = lines(r);
        addToLedger(zone(a, false), l.now, r.gw_key_id);
        oldRecordUsage(l.old, r.gw_key_id, zone(b, false));
      }
      expect(a).toEqual(b);
    }), { seed: 2103, numRuns: 3000 });
  });

  it('the facts this test lays out are the ones the recorders read', () => {
    expect(END_FACTS[Fact.plain]).toBe('gw_end_plain');
    expect(Object.keys(OLD)).toHaveLength(Fact.count - 1);
    expect(sumTimes('0.010')).toBeCloseTo(0.01);
    expect(escapeLabel('a"b')).toBe('a\\"b');
  });
});

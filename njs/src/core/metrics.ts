/**
 * The gateway's Prometheus metrics: every family (name, type, help) and what one finished request
 * adds to them. Pure: the log-phase recorder (ngx/metricsRecorder.ts) feeds it nginx variables and
 * applies the returned increments to the `gw_metrics` number zone with atomic `incr`.
 * docs/observability.md#discovery-health-and-metrics lists the same families; a unit test keeps them equal.
 */
import { Fact } from './endFacts';
import { escapeLabel, Family, LATENCY_BUCKETS } from './promText';

export const FAMILIES: Family[] = [
  { name: 'gw_build_info', type: 'gauge', help: 'Gateway, nginx and njs versions; always 1.' },
  { name: 'gw_requests_total', type: 'counter',
    help: 'API requests answered by the gateway (routed or refused by it), by model as routed, status class and API key id.' },
  { name: 'gw_request_duration_seconds', type: 'histogram', buckets: LATENCY_BUCKETS,
    help: 'Total time of API requests as nginx measured it ($request_time), queue wait included.' },
  { name: 'gw_upstream_response_duration_seconds', type: 'histogram', buckets: LATENCY_BUCKETS,
    help: 'Time spent on the backend ($upstream_response_time, all tries added up).' },
  { name: 'gw_upstream_header_duration_seconds', type: 'histogram', buckets: LATENCY_BUCKETS,
    help: 'Time until the backend sent response headers ($upstream_header_time, all tries added up).' },
  { name: 'gw_time_to_first_token_seconds', type: 'histogram', buckets: LATENCY_BUCKETS,
    help: 'Streamed requests: time until the first body bytes of the stream ($gw_ttft_ms, when the log feature sets it).' },
  { name: 'gw_queue_wait_seconds', type: 'histogram', buckets: LATENCY_BUCKETS,
    help: 'Time routed requests waited for a concurrency slot ($gw_queue_ms).' },
  { name: 'gw_tokens_total', type: 'counter',
    help: 'Tokens reported in the responses\' usage, by model and type (prompt, completion), when known.' },
  { name: 'gw_inflight_requests', type: 'gauge', help: 'Requests holding a concurrency slot, by model.' },
  { name: 'gw_queued_requests', type: 'gauge', help: 'Requests waiting for a concurrency slot, by model.' },
  { name: 'gw_queue_rejected_total', type: 'counter', help: 'Requests refused because the model\'s wait queue was full.' },
  { name: 'gw_queue_timeouts_total', type: 'counter', help: 'Requests that gave up waiting for a concurrency slot.' },
  { name: 'gw_backend_up', type: 'gauge',
    help: 'Active health check of each backend server: 1 healthy, 0 failing; absent while unknown.' },
  { name: 'gw_model_up', type: 'gauge',
    help: '1 when at least one server of the model\'s upstream is healthy, 0 when all fail; absent while unknown.' },
  { name: 'gw_health_check_timestamp_seconds', type: 'gauge', help: 'Unix time of the last completed health-check round.' },
  { name: 'gw_models_listing_age_seconds', type: 'gauge',
    help: 'Age of the newest /v1/models answer fetched from each upstream (absent: never fetched).' },
];

/** The one operation the recorder needs from the `gw_metrics` zone (a fake in unit tests). */
export interface Counters {
  incr(key: string, delta: number, init: number): number;
}

/**
 * Adds the numbers in an nginx time list such as "0.010, 0.250 : 1.000" (one per try, ":" between
 * internal redirects); "-" (no answer) counts as nothing. NaN when there is no number at all.
 */
export function sumTimes(v: string): number {
  if (v === '') return NaN;
  // The usual case, one try: unary plus reads it (a list or "-" reads NaN), with no call at all
  // (njs 0.8 pays for each call; split+trim is ~20x slower than Number()).
  const one = +v;
  if (one === one) return one;
  if (v.indexOf(',') < 0 && v.indexOf(':') < 0) return NaN;
  const parts = v.split(/[,:]/);
  let sum = 0;
  let any = false;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i].trim();
    if (p === '' || p === '-') continue;
    const n = Number(p);
    if (n !== n) continue;
    sum += n;
    any = true;
  }
  return any ? sum : NaN;
}

function nonNegative(v: string): number {
  if (v === '') return NaN;
  const n = +v;
  return n >= 0 ? n : NaN;
}

/**
 * The part of a key that counts one observation in bucket i of gw_request_duration_seconds,
 * gw_upstream_response_duration_seconds and gw_upstream_header_duration_seconds and in bucket 0 of
 * gw_queue_wait_seconds, for the series' labels: `gw_request_duration_seconds\n<labels>\nB<i>`.
 * One `incr` instead of four for the usual request; a renderer that does not know it ignores it.
 */
const COMBINED = '\nB';

/**
 * bucketIndex(LATENCY_BUCKETS, v) by halving instead of a walk from the first bound: at most five
 * comparisons and no loop (njs 0.8 pays ~500 instructions per loop turn). A unit test holds it equal
 * to bucketIndex; it must change with LATENCY_BUCKETS.
 */
export function latencyBucket(v: number): number {
  if (v <= 0.5) {
    if (v <= 0.05) return v <= 0.01 ? (v <= 0.005 ? 0 : 1) : v <= 0.025 ? 2 : 3;
    return v <= 0.1 ? 4 : v <= 0.25 ? 5 : 6;
  }
  if (v <= 10) return v <= 1 ? 7 : v <= 2.5 ? 8 : v <= 5 ? 9 : 10;
  if (v <= 120) return v <= 30 ? 11 : v <= 60 ? 12 : 13;
  return v <= 300 ? 14 : v <= 900 ? 15 : 16;
}

/** One histogram observation: its bucket, and its sum unless zero. Returns the failed updates. */
function observe(d: Counters, family: string, mb: string, ms: string, v: number): number {
  let dropped = 0;
  try {
    d.incr(family + mb + latencyBucket(v), 1, 0);
  } catch (e) {
    dropped++;
  }
  return dropped + sum(d, family, ms, v);
}

/** Adds to a histogram's sum; a zero observation adds nothing (an absent sum renders as 0). */
function sum(d: Counters, family: string, ms: string, v: number): number {
  if (!(v > 0)) return 0;
  try {
    d.incr(family + ms, v, 0);
  } catch (e) {
    return 1;
  }
  return 0;
}

/**
 * The stored [key, value] pairs with each COMBINED key replaced by the four bucket keys it stands
 * for (the renderer adds up equal keys). Run at scrape time, before renderExposition.
 */
export function expandCombined(stored: [string, number][]): [string, number][] {
  const out: [string, number][] = [];
  for (let i = 0; i < stored.length; i++) {
    const k = stored[i][0];
    const at = k.lastIndexOf(COMBINED);
    if (at < 0 || k.indexOf('gw_request_duration_seconds\n') !== 0) {
      out.push(stored[i]);
      continue;
    }
    const labels = k.slice('gw_request_duration_seconds'.length, at);
    const b = '\nb' + k.slice(at + COMBINED.length);
    const v = stored[i][1];
    out.push(['gw_request_duration_seconds' + labels + b, v]);
    out.push(['gw_upstream_response_duration_seconds' + labels + b, v]);
    out.push(['gw_upstream_header_duration_seconds' + labels + b, v]);
    out.push(['gw_queue_wait_seconds' + labels + '\nb0', v]);
  }
  return out;
}

/**
 * Adds one request's counts to `d` (atomic `incr`s); returns how many updates failed (a full zone
 * refuses new keys: the others still count). Nothing when it was not an API request (no model was
 * routed and the gateway made no error: /metrics, /health, the model list and the like are not
 * counted). `p` is the split $gw_end_facts (core/endFacts.ts), `keyId` is $gw_key_id.
 * Keys follow promText's seriesKey/bucketKey/sumKey layout, built inline with each `incr` in its
 * own try: this runs in every request's log phase, and njs 0.8 pays for each call, each string `+`
 * and each object property (docs/benchmarks.md).
 * A zero observation adds nothing to a histogram's sum (an absent sum renders as 0).
 * Labels are bounded by configuration: `model` is a routed (configured) name, never the client's
 * raw string; `key_id` comes from the key store.
 */
export function requestIncrements(p: string[], keyId: string, d: Counters): number {
  const model = p[Fact.model];
  if (model === '' && p[Fact.errorCode] === '') return 0;
  let dropped = 0;
  // Fact.plain "1": nginx found nothing to escape in either label (escapeLabel's checks in C).
  const plain = p[Fact.plain] === '1';
  const m = '\nmodel="' + (plain ? model : escapeLabel(model)) + '"';
  const ms = m + '\ns';
  const st = p[Fact.status];
  const c = st.length === 3 ? st[0] : '';
  try {
    d.incr('gw_requests_total' + m + (c >= '1' && c <= '5' ? ',status_class="' + c + 'xx",key_id="' : ',status_class="other",key_id="') +
      (plain ? keyId : escapeLabel(keyId)) + '"', 1, 0);
  } catch (e) {
    dropped++;
  }
  // nonNegative and sumTimes inline for the usual single value (no call); a list takes sumTimes.
  // A negative or unreadable time is NaN or below 0 here, and every use below tests `>= 0`.
  const rt = p[Fact.requestTime];
  const s = rt === '' ? NaN : +rt;
  if (model === '') {
    // A refusal before routing: its duration only.
    if (s >= 0) dropped += observe(d, 'gw_request_duration_seconds', m + '\nb', ms, s);
    return dropped;
  }
  const ut = p[Fact.upstreamResponseTime];
  let upstream = ut === '' ? NaN : +ut;
  if (upstream !== upstream) upstream = sumTimes(ut);
  const ht = p[Fact.upstreamHeaderTime];
  let header = ht === '' ? NaN : +ht;
  if (header !== header) header = sumTimes(ht);
  const qt = p[Fact.queueMs];
  const queued = qt === '' ? NaN : +qt;
  const rb = s >= 0 ? latencyBucket(s) : -1;
  // The usual answered request: total, backend and header times in one bucket and no queue wait.
  // Those four bucket counts take ONE key (COMBINED, expanded at scrape time by expandCombined).
  // Buckets grow with the value: with header <= upstream <= total (the usual order) the three share
  // a bucket when header and total do, one latencyBucket call (none when they are equal).
  if (rb >= 0 && upstream >= 0 && header >= 0 && !(queued > 0) &&
    (header <= upstream && upstream <= s ? header === s || latencyBucket(header) === rb
      : latencyBucket(upstream) === rb && latencyBucket(header) === rb)) {
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
    const mb = m + '\nb';
    if (rb >= 0) dropped += observe(d, 'gw_request_duration_seconds', mb, ms, s);
    if (upstream >= 0) dropped += observe(d, 'gw_upstream_response_duration_seconds', mb, ms, upstream);
    if (header >= 0) dropped += observe(d, 'gw_upstream_header_duration_seconds', mb, ms, header);
    // A wait is observed for requests that reached a backend or did wait (a queue timeout), not for
    // those refused before the queue (they would pile up as zero-second waits).
    if (queued > 0) dropped += observe(d, 'gw_queue_wait_seconds', mb, ms, queued / 1000);
    else if (upstream >= 0) dropped += observe(d, 'gw_queue_wait_seconds', mb, ms, 0);
  }
  if (p[Fact.stream] === '1') {
    const t = nonNegative(p[Fact.ttftMs]) / 1000;
    if (t >= 0) dropped += observe(d, 'gw_time_to_first_token_seconds', m + '\nb', ms, t);
  }
  // Unary plus: "" reads 0 and anything not a positive number adds nothing, as before.
  let n = +p[Fact.promptTokens];
  try {
    if (n > 0) d.incr('gw_tokens_total' + m + ',type="prompt"', n, 0);
  } catch (e) {
    dropped++;
  }
  n = +p[Fact.completionTokens];
  try {
    if (n > 0) d.incr('gw_tokens_total' + m + ',type="completion"', n, 0);
  } catch (e) {
    dropped++;
  }
  return dropped;
}

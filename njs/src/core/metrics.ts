/**
 * The gateway's Prometheus metrics: every family (name, type, help) and what one finished request
 * adds to them. Pure: the log-phase recorder (ngx/metricsRecorder.ts) feeds it nginx variables and
 * applies the returned increments to the `gw_metrics` number zone with atomic `incr`.
 * docs/observability.md#discovery-health-and-metrics lists the same families; a unit test keeps them equal.
 */
import { bucketIndex, bucketKey, escapeLabel, Family, LATENCY_BUCKETS, seriesKey, sumKey } from './promText';

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

/** What the log phase knows about one finished request, as nginx variables (strings). */
export interface RequestFacts {
  model: string;
  keyId: string;
  errorCode: string;
  status: string;
  requestTime: string;
  upstreamResponseTime: string;
  upstreamHeaderTime: string;
  stream: string;
  queueMs: string;
  ttftMs: string;
  promptTokens: string;
  completionTokens: string;
}

/**
 * Adds the numbers in an nginx time list such as "0.010, 0.250 : 1.000" (one per try, ":" between
 * internal redirects); "-" (no answer) counts as nothing. NaN when there is no number at all.
 */
export function sumTimes(v: string): number {
  if (v === '' || v === '-') return NaN;
  // The usual case, one try: no split (njs 0.8 runs split+trim ~20x slower than Number()).
  if (v.indexOf(',') < 0 && v.indexOf(':') < 0) {
    const one = Number(v);
    return one === one ? one : NaN;
  }
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

export function statusClass(status: string): string {
  const c = status.length === 3 ? status.charAt(0) : '';
  return c >= '1' && c <= '5' ? c + 'xx' : 'other';
}

/** Receives each shared-dict key and the amount to add to it. */
export type AddIncrement = (key: string, delta: number) => void;

// The series key is built once per histogram: njs 0.8 pays ~0.3 us per string `+`, ~1.5 us per
// small array, and this runs in every request's log phase.
function observe(add: AddIncrement, family: string, labels: string, seconds: number): void {
  if (!(seconds >= 0)) return;
  const series = seriesKey(family, labels);
  add(bucketKey(series, bucketIndex(LATENCY_BUCKETS, seconds)), 1);
  add(sumKey(series), seconds);
}

function nonNegative(v: string): number {
  if (v === '') return NaN;
  const n = Number(v);
  return n >= 0 ? n : NaN;
}

/**
 * Calls add() with the increments for one request; none when it was not an API request (no model
 * was routed and the gateway made no error: /metrics, /health, the model list and the like are not
 * counted). Keys come from promText's seriesKey/bucketKey/sumKey.
 * Labels are bounded by configuration: `model` is a routed (configured) name, never the client's
 * raw string; `key_id` comes from the key store.
 */
export function requestIncrements(f: RequestFacts, add: AddIncrement): void {
  if (f.model === '' && f.errorCode === '') return;
  const m = 'model="' + escapeLabel(f.model) + '"';
  add(seriesKey('gw_requests_total', m + ',status_class="' + statusClass(f.status) + '",key_id="' + escapeLabel(f.keyId) + '"'), 1);
  observe(add, 'gw_request_duration_seconds', m, nonNegative(f.requestTime));
  if (f.model === '') return;
  const upstream = sumTimes(f.upstreamResponseTime);
  observe(add, 'gw_upstream_response_duration_seconds', m, upstream);
  observe(add, 'gw_upstream_header_duration_seconds', m, sumTimes(f.upstreamHeaderTime));
  if (f.stream === '1') observe(add, 'gw_time_to_first_token_seconds', m, nonNegative(f.ttftMs) / 1000);
  // A wait is observed for requests that reached a backend or did wait (a queue timeout), not for
  // those refused before the queue (they would pile up as zero-second waits).
  const queued = nonNegative(f.queueMs);
  if (queued > 0 || upstream >= 0) observe(add, 'gw_queue_wait_seconds', m, (queued >= 0 ? queued : 0) / 1000);
  const pt = nonNegative(f.promptTokens);
  const ct = nonNegative(f.completionTokens);
  if (pt > 0) add(seriesKey('gw_tokens_total', m + ',type="prompt"'), pt);
  if (ct > 0) add(seriesKey('gw_tokens_total', m + ',type="completion"'), ct);
}

/**
 * The `gw_metrics` number zone (nginx/discovery-http.conf): counters and histogram buckets under
 * the keys core/promText.ts builds. Only atomic `incr` writes to it, so every worker's requests
 * add up exactly; values survive `nginx -s reload` and reset on restart (Prometheus handles that).
 */
const ZONE = 'gw_metrics';

export function metricsDict(): NgxSharedDict<number> | undefined {
  return ngx.shared[ZONE] as NgxSharedDict<number> | undefined;
}

/** The queue feature's per-model counters (zone `gw_queue`, keys "<what>:<model>"); 0 when absent. */
export function queueCount(what: string, model: string): number {
  const q = ngx.shared.gw_queue as NgxSharedDict<number> | undefined;
  if (q === undefined) return 0;
  const v = q.get(what + ':' + model);
  return typeof v === 'number' ? v : 0;
}

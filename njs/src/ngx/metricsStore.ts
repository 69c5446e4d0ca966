/**
 * The `gw_metrics` number zone (nginx/discovery-http.conf): counters and histogram buckets under
 * the keys core/promText.ts builds. Only atomic `incr` writes to it, so every worker's requests
 * add up exactly; values survive `nginx -s reload` and reset on restart (Prometheus handles that).
 */
const ZONE = 'gw_metrics';

export function metricsDict(): NgxSharedDict<number> | undefined {
  return ngx.shared[ZONE] as NgxSharedDict<number> | undefined;
}

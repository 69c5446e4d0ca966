/**
 * The `gw_metrics` number zone (nginx/discovery-http.conf): counters and histogram buckets under
 * the keys core/promText.ts builds. Only atomic `incr` writes to it, so every worker's requests
 * add up exactly; values survive `nginx -s reload` and reset on restart (Prometheus handles that).
 */
const ZONE = 'gw_metrics';

export function metricsDict(): NgxSharedDict<number> | undefined {
  return ngx.shared[ZONE] as NgxSharedDict<number> | undefined;
}

/**
 * An increment sink over the zone, for core/metrics.ts's requestIncrements. dropped() counts the
 * writes that could not be stored because the zone is full (those are dropped: a full zone must
 * not fail requests; raise the zone size, see the include).
 */
export function incrementer(d: NgxSharedDict<number>): { add: (key: string, delta: number) => void; dropped: () => number } {
  let dropped = 0;
  return {
    add: function (key: string, delta: number): void {
      try {
        d.incr(key, delta, 0);
      } catch (e) {
        dropped++;
      }
    },
    dropped: function (): number {
      return dropped;
    },
  };
}

/** The queue feature's per-model counters (zone `gw_queue`, keys "<what>:<model>"); 0 when absent. */
export function queueCount(what: string, model: string): number {
  const q = ngx.shared.gw_queue as NgxSharedDict<number> | undefined;
  if (q === undefined) return 0;
  const v = q.get(what + ':' + model);
  return typeof v === 'number' ? v : 0;
}

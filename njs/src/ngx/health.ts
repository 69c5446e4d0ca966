/**
 * The health store: owns the `gw_health` number zone (nginx/discovery-http.conf), written by the
 * js_periodic refresher and read by routing, /readyz, /v1/metadata and /metrics. Nothing else
 * builds its keys or calls get/set on it. Keys:
 *   s\n<upstream>\n<server>   server state (1 up, 0 down, -1 unknown; core/health.ts)
 *   f\n<upstream>\n<server>   consecutive failed probes
 *   c\n<upstream>\n<server>   ms of the last probe
 *   u\n<upstream>             the upstream's status code after the last round
 *   tick                      ms when the last round finished
 * The last probe error of each server is text, so it lives in the `gw_discovery` string zone
 * (ngx/discoveryStore.ts writeProbeError/readProbeError). This module does not import that store:
 * routing imports modelHealthy from here, and the request bundle must not grow by the discovery code.
 */
import { healthFresh, HealthView, nextHealth, ProbeResult, ServerHealth, ServerView, statusCode, statusName, UNKNOWN, upstreamStatus } from '../core/health';
import { RouteTable } from '../core/routes';

const ZONE = 'gw_health';
const TICK = 'tick';

function healthDict(): NgxSharedDict<number> | undefined {
  return ngx.shared[ZONE] as NgxSharedDict<number> | undefined;
}

function serverKey(kind: 's' | 'f' | 'c', upstream: string, server: string): string {
  return kind + '\n' + upstream + '\n' + server;
}

function upstreamKey(upstream: string): string {
  return 'u\n' + upstream;
}

/**
 * Routing's question: may requests for a model on `upstream` be proxied now? False only when the
 * active checks are running and every server of the upstream failed them; true when there is no
 * data (checks off, zone missing, refresher not run yet or stopped), so routing works without them.
 */
export function modelHealthy(upstream: string): boolean {
  const d = ngx.shared[ZONE] as NgxSharedDict<number> | undefined;
  if (d === undefined) return true;
  // The upstream's status first (upstreamKey's layout, written out: every routed request asks):
  // anything but "down" answers without the freshness check.
  if (d.get('u\n' + upstream) !== 0) return true;
  return !healthFresh(d.get(TICK), Date.now());
}

/** True when nginx.conf declares the zone, i.e. the refresher has somewhere to keep probe results. */
export function healthEnabled(): boolean {
  return healthDict() !== undefined;
}

function readServer(d: NgxSharedDict<number>, upstream: string, server: string): ServerHealth {
  const s = d.get(serverKey('s', upstream, server));
  const f = d.get(serverKey('f', upstream, server));
  return { state: s !== undefined ? s : UNKNOWN, fails: f !== undefined ? f : 0 };
}

/**
 * Folds one probe of `server` into its stored state (core/health.ts nextHealth) and stamps the
 * probe time. Returns the new state. Only the refresher writes here, and it runs on one worker, so
 * the read-then-write is safe.
 */
export function recordProbe(upstream: string, server: string, result: ProbeResult): number {
  const d = healthDict();
  if (d === undefined) return UNKNOWN;
  const next = nextHealth(readServer(d, upstream, server), result);
  d.set(serverKey('s', upstream, server), next.state);
  d.set(serverKey('f', upstream, server), next.fails);
  d.set(serverKey('c', upstream, server), Date.now());
  return next.state;
}

/** Stores the upstream's status after a round, from the states recordProbe returned for its servers. */
export function recordUpstream(upstream: string, states: number[]): void {
  const d = healthDict();
  if (d !== undefined) d.set(upstreamKey(upstream), statusCode(upstreamStatus(states)));
}

/** True when the last round found every server of `upstream` down (not: unknown or no data). */
export function upstreamDown(upstream: string): boolean {
  const d = healthDict();
  return d !== undefined && d.get(upstreamKey(upstream)) === 0;
}

/** Marks the end of a round; readers treat the data as live while this is recent (healthFresh). */
export function markTick(now: number): void {
  const d = healthDict();
  if (d !== undefined) d.set(TICK, now);
}

/**
 * Everything the read-side endpoints (/readyz, /v1/metadata, /metrics) show about backend health,
 * for the routing table's upstreams, as of `now`; `errorOf` gives a server's last probe error
 * (ngx/discoveryStore.ts readProbeError).
 */
export function healthSnapshot(t: RouteTable, now: number, errorOf: (upstream: string, server: string) => string | null): HealthView {
  const d = healthDict();
  const tick = d !== undefined ? d.get(TICK) : undefined;
  const active = d !== undefined && healthFresh(tick, now);
  const view: HealthView = { active: active, checked_at: tick !== undefined ? Math.floor(tick / 1000) : null, upstreams: Object.create(null) };
  const ups = Object.keys(t.upstreams);
  for (let i = 0; i < ups.length; i++) {
    const servers: ServerView[] = [];
    const list = t.upstreams[ups[i]].servers;
    for (let j = 0; j < list.length; j++) {
      const c = d !== undefined ? d.get(serverKey('c', ups[i], list[j])) : undefined;
      servers.push({
        address: list[j],
        status: active ? statusName((d as NgxSharedDict<number>).get(serverKey('s', ups[i], list[j]))) : 'unknown',
        checked_at: c !== undefined ? Math.floor(c / 1000) : null,
        error: errorOf(ups[i], list[j]),
      });
    }
    view.upstreams[ups[i]] = { status: active ? statusName((d as NgxSharedDict<number>).get(upstreamKey(ups[i]))) : 'unknown', servers: servers };
  }
  return view;
}

/**
 * The `gw_health` number zone (nginx/discovery-http.conf), written by the js_periodic refresher and
 * read by routing, /readyz, /v1/metadata and /metrics. Keys:
 *   s\n<upstream>\n<server>   server state (1 up, 0 down, -1 unknown; core/health.ts)
 *   f\n<upstream>\n<server>   consecutive failed probes
 *   c\n<upstream>\n<server>   ms of the last probe
 *   u\n<upstream>             the upstream's status code after the last round
 *   tick                      ms when the last round finished
 * The last probe error of each server is kept as text in the `gw_discovery` string zone (e\n...).
 */
import { healthFresh, HealthView, ServerHealth, ServerView, statusName, UNKNOWN } from '../core/health';
import { RouteTable } from '../core/routes';

const ZONE = 'gw_health';
export const TICK = 'tick';

export function healthDict(): NgxSharedDict<number> | undefined {
  return ngx.shared[ZONE] as NgxSharedDict<number> | undefined;
}

export function serverKey(kind: 's' | 'f' | 'c' | 'e', upstream: string, server: string): string {
  return kind + '\n' + upstream + '\n' + server;
}

export function upstreamKey(upstream: string): string {
  return 'u\n' + upstream;
}

/**
 * Routing's question: may requests for a model on `upstream` be proxied now? False only when the
 * active checks are running and every server of the upstream failed them; true when there is no
 * data (checks off, zone missing, refresher not run yet or stopped), so routing works without them.
 */
export function modelHealthy(upstream: string): boolean {
  const d = healthDict();
  if (d === undefined) return true;
  if (!healthFresh(d.get(TICK), Date.now())) return true;
  return d.get(upstreamKey(upstream)) !== 0;
}

export function readServer(d: NgxSharedDict<number>, upstream: string, server: string): ServerHealth {
  const s = d.get(serverKey('s', upstream, server));
  const f = d.get(serverKey('f', upstream, server));
  return { state: s !== undefined ? s : UNKNOWN, fails: f !== undefined ? f : 0 };
}

/** Everything the read-side endpoints show about backend health, for the routing table's upstreams. */
export function healthView(t: RouteTable, errors: NgxSharedDict<string> | undefined): HealthView {
  const d = healthDict();
  const tick = d !== undefined ? d.get(TICK) : undefined;
  const active = d !== undefined && healthFresh(tick, Date.now());
  const view: HealthView = { active: active, checked_at: tick !== undefined ? Math.floor(tick / 1000) : null, upstreams: Object.create(null) };
  const ups = Object.keys(t.upstreams);
  for (let i = 0; i < ups.length; i++) {
    const servers: ServerView[] = [];
    const list = t.upstreams[ups[i]].servers;
    for (let j = 0; j < list.length; j++) {
      const c = d !== undefined ? d.get(serverKey('c', ups[i], list[j])) : undefined;
      const e = errors !== undefined ? errors.get(serverKey('e', ups[i], list[j])) : undefined;
      servers.push({
        address: list[j],
        status: active ? statusName((d as NgxSharedDict<number>).get(serverKey('s', ups[i], list[j]))) : 'unknown',
        checked_at: c !== undefined ? Math.floor(c / 1000) : null,
        error: e !== undefined && e !== '' ? e : null,
      });
    }
    view.upstreams[ups[i]] = { status: active ? statusName((d as NgxSharedDict<number>).get(upstreamKey(ups[i]))) : 'unknown', servers: servers };
  }
  return view;
}

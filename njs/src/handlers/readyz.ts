/**
 * gw.ops.readyz: `js_content` in `location = /readyz` (nginx/discovery-server.conf).
 *
 * Readiness from the active health checks (no backend call). Policy `all` (default): 200 when no
 * configured model is down, i.e. routing would refuse none of them; `?policy=any`: 200 when at
 * least one model is not down. A model is down when every server of its upstream failed its
 * probes; "unknown" (not probed yet, checks off, host name without resolver) does not block.
 * Body: {"status":"ready"|"not_ready","policy","checks_active","checked_at","models":{..},"upstreams":{..}};
 * only {"status","policy"} unless the client may see operator detail (ngx/adminAuth.ts opsAllowed):
 * the detail names backend addresses and probe errors.
 * Returns: 200, 503.
 */
import { ready, ReadyPolicy, Status } from '../core/health';
import { readProbeError } from '../ngx/discoveryStore';
import { opsAllowed } from '../ngx/adminAuth';
import { guard } from '../ngx/guard';
import { healthSnapshot } from '../ngx/health';
import { replyJson } from '../ngx/reply';
import { routes } from '../ngx/table';

export function readyz(r: NginxHTTPRequest): void {
  guard(r, 'readyz', function () {
    const policy: ReadyPolicy = r.args.policy === 'any' ? 'any' : 'all';
    const h = healthSnapshot(routes, Date.now(), readProbeError);
    const models: { [name: string]: { status: Status; upstream: string } } = Object.create(null);
    const statuses: Status[] = [];
    const names = Object.keys(routes.models);
    for (let i = 0; i < names.length; i++) {
      const up = routes.models[names[i]].upstream;
      const st = h.upstreams[up] !== undefined ? h.upstreams[up].status : 'unknown';
      models[names[i]] = { status: st, upstream: up };
      statuses.push(st);
    }
    const ok = ready(statuses, policy);
    r.headersOut['Cache-Control'] = 'no-store';
    if (!opsAllowed(r)) {
      replyJson(r, ok ? 200 : 503, JSON.stringify({ status: ok ? 'ready' : 'not_ready', policy: policy }));
      return;
    }
    replyJson(r, ok ? 200 : 503, JSON.stringify({
      status: ok ? 'ready' : 'not_ready',
      policy: policy,
      checks_active: h.active,
      checked_at: h.checked_at,
      models: models,
      upstreams: h.upstreams,
    }));
  });
}

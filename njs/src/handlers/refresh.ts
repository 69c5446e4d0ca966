/**
 * gw.ops.refresh: `js_periodic gw.ops.refresh interval=2s;` in `location @gw_refresh`
 * (nginx/discovery-server.conf). Runs on worker 0 only (the default), at start and every interval.
 *
 * One round, everything in parallel so the round lasts about one fetch (bounded by that
 * location's js_fetch_timeout, which must stay below the interval: nginx kills a round still
 * running when the next one is due):
 *   - GET http://<server>/health for every server of every upstream → `gw_health` states;
 *   - GET http://<server>/v1/models for every upstream whose listing is older than the TTL, whose
 *     last fetch failed, or that was down in the last round → `gw_discovery` listings, then the
 *     cached model list is rebuilt.
 * Reads no request; writes only the two zones. Never throws (errors go to the error log).
 */
import { classifyProbe, ProbeResult } from '../core/health';
import { needsRefresh } from '../core/discovery';
import { backendHeaders, cachedList, discoveryDict, readListing, rebuildList, refreshUpstream, writeProbeError } from '../ngx/discoveryStore';
import { healthEnabled, markTick, recordProbe, recordUpstream, upstreamDown } from '../ngx/health';
import { routes } from '../ngx/table';
import { errorText } from '../core/logText';

function probe(addr: string, headers: { [name: string]: string }): Promise<{ result: ProbeResult; error: string }> {
  return ngx.fetch('http://' + addr + '/health', { method: 'GET', headers: headers })
    .then(function (res) {
      const result = classifyProbe(res.status, '');
      return { result: result, error: result === 'ok' ? '' : 'HTTP ' + res.status };
    })
    .catch(function (e) {
      const msg = String(e && (e as Error).message ? (e as Error).message : e);
      return { result: classifyProbe(0, msg), error: msg };
    });
}

function checkUpstream(upstream: string): Promise<void> {
  const servers = routes.upstreams[upstream].servers;
  const ps: Promise<void>[] = [];
  const states: number[] = [];
  const headers = backendHeaders(routes, upstream);
  for (let i = 0; i < servers.length; i++) {
    const addr = servers[i];
    ps.push(probe(addr, headers).then(function (p) {
      states.push(recordProbe(upstream, addr, p.result));
      writeProbeError(upstream, addr, p.error);
    }));
  }
  return Promise.all(ps).then(function () {
    recordUpstream(upstream, states);
  });
}

export async function refresh(): Promise<void> {
  try {
    const checks = healthEnabled();
    const d = discoveryDict();
    const ups = Object.keys(routes.upstreams);
    const now = Date.now();
    const work: Promise<unknown>[] = [];
    let listings = 0;
    for (let i = 0; i < ups.length; i++) {
      if (checks) work.push(checkUpstream(ups[i]));
      // A down upstream's listing is retried every round, so /v1/metadata flags it stale at once.
      const down = upstreamDown(ups[i]);
      if (d !== undefined && (down || needsRefresh(readListing(d, ups[i]), now))) {
        work.push(refreshUpstream(d, routes, ups[i]));
        listings++;
      }
    }
    await Promise.all(work);
    if (d !== undefined && (listings > 0 || cachedList(d).body === undefined)) rebuildList(d, routes);
    markTick(Date.now());
  } catch (e) {
    ngx.log(ngx.ERR, 'gw: refresh failed: ' + errorText(e));
  }
}

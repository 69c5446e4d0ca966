/**
 * gw.ops.metrics: `js_content` in `location = /metrics` (nginx/discovery-server.conf).
 *
 * Prometheus text format 0.0.4: the request counters and histograms the log-phase recorder keeps
 * in `gw_metrics`, plus gauges read at scrape time (queue counts from `gw_queue`, backend health
 * from `gw_health`, listing ages from `gw_discovery`). core/metrics.ts lists every family.
 * `?backends=1` appends each backend server's own /metrics (vLLM's), fetched in parallel, with
 * labels gw_upstream and gw_server added to every sample (core/promMerge.ts).
 * Only for trusted addresses or the admin token (ngx/adminAuth.ts opsAllowed): the series name
 * every key id. Returns: 200 text/plain; version=0.0.4, 404 not_found (not allowed), 500 internal_error.
 */
import { gwError } from '../core/errors';
import { expandCombined, FAMILIES } from '../core/metrics';
import { mergeBackendMetrics } from '../core/promMerge';
import { labelText, renderExposition, Sample } from '../core/promText';
import { GATEWAY_VERSION } from '../core/version';
import { backendHeaders, discoveryDict, readListings, readProbeError } from '../ngx/discoveryStore';
import { opsAllowed } from '../ngx/adminAuth';
import { guard } from '../ngx/guard';
import { healthSnapshot } from '../ngx/health';
import { metricsDict } from '../ngx/metricsStore';
import { queueSnapshotOf } from '../ngx/slots';
import { replyError } from '../ngx/reply';
import { routes } from '../ngx/table';
import { errorText } from '../core/logText';

function scrapeSamples(now: number): Sample[] {
  const out: Sample[] = [];
  out.push({ family: 'gw_build_info', labels: labelText(['version', 'nginx', 'njs'], [GATEWAY_VERSION, ngx.version, njs.version]), value: 1 });
  const names = Object.keys(routes.models);
  for (let i = 0; i < names.length; i++) {
    const m = labelText(['model'], [names[i]]);
    const q = queueSnapshotOf(names[i]);
    out.push({ family: 'gw_inflight_requests', labels: m, value: q.inflight });
    out.push({ family: 'gw_queued_requests', labels: m, value: q.waiting });
    out.push({ family: 'gw_queue_rejected_total', labels: m, value: q.rejected });
    out.push({ family: 'gw_queue_timeouts_total', labels: m, value: q.timed_out });
  }
  const h = healthSnapshot(routes, now, readProbeError);
  if (h.checked_at !== null) {
    out.push({ family: 'gw_health_check_timestamp_seconds', labels: '', value: h.checked_at });
  }
  if (h.active) {
    const ups = Object.keys(h.upstreams);
    for (let i = 0; i < ups.length; i++) {
      const servers = h.upstreams[ups[i]].servers;
      for (let j = 0; j < servers.length; j++) {
        const s = servers[j].status;
        if (s !== 'unknown') out.push({ family: 'gw_backend_up', labels: labelText(['upstream', 'server'], [ups[i], servers[j].address]), value: s === 'up' ? 1 : 0 });
      }
    }
    for (let i = 0; i < names.length; i++) {
      const u = h.upstreams[routes.models[names[i]].upstream];
      if (u !== undefined && u.status !== 'unknown') out.push({ family: 'gw_model_up', labels: labelText(['model'], [names[i]]), value: u.status === 'up' ? 1 : 0 });
    }
  }
  const d = discoveryDict();
  if (d !== undefined) {
    const listings = readListings(d, routes);
    const ups = Object.keys(listings);
    for (let i = 0; i < ups.length; i++) {
      const l = listings[ups[i]];
      if (l !== null && l.fetched_at > 0) {
        out.push({ family: 'gw_models_listing_age_seconds', labels: labelText(['upstream'], [ups[i]]), value: Math.max(0, (now - l.fetched_at) / 1000) });
      }
    }
  }
  return out;
}

function fetchBackend(upstream: string, addr: string): Promise<{ upstream: string; server: string; text: string }> {
  return ngx.fetch('http://' + addr + '/metrics', { method: 'GET', headers: backendHeaders(routes, upstream) })
    .then(function (res) {
      return res.status === 200 ? res.text() : '';
    })
    .catch(function () {
      return '';
    })
    .then(function (text) {
      return { upstream: upstream, server: addr, text: text };
    });
}

async function render(r: NginxHTTPRequest): Promise<void> {
  const d = metricsDict();
  const stored = d !== undefined ? d.items() as [string, number][] : [];
  let body = renderExposition(FAMILIES, expandCombined(stored), scrapeSamples(Date.now()));
  if (r.args.backends === '1') {
    const ps: Promise<{ upstream: string; server: string; text: string }>[] = [];
    const ups = Object.keys(routes.upstreams);
    for (let i = 0; i < ups.length; i++) {
      const servers = routes.upstreams[ups[i]].servers;
      for (let j = 0; j < servers.length; j++) ps.push(fetchBackend(ups[i], servers[j]));
    }
    // njs 0.8: `await` inside call arguments is a SyntaxError; await into a variable first.
    const texts = await Promise.all(ps);
    body += mergeBackendMetrics(texts);
  }
  r.headersOut['Content-Type'] = 'text/plain; version=0.0.4; charset=utf-8';
  r.return(200, body);
}

export function metrics(r: NginxHTTPRequest): void {
  guard(r, 'metrics', function () {
    if (!opsAllowed(r)) {
      replyError(r, gwError('not_found'));
      return;
    }
    render(r).catch(function (e) {
      r.error('gw: metrics failed: ' + errorText(e));
      replyError(r, gwError('internal_error'));
    });
  });
}

/**
 * gw.ops.models: `js_content` in `location = /v1/models` and `location ^~ /v1/models/`
 * (nginx/discovery-server.conf).
 *
 * GET /v1/models answers the union of the backends' model lists plus aliases, in OpenAI's shape,
 * from the `gw_discovery` cache the refresher keeps (core/discovery.ts has the policy); only when
 * the cache is missing or old (refresher not running) does it fetch the stale upstreams itself,
 * bounded by the location's js_fetch_timeout. GET /v1/models/{id} answers one entry ({id} may hold
 * slashes: "BAAI/bge-m3", or %2F-encoded). Both are filtered by $gw_key_models (core/access.ts).
 * Reads: $gw_key_models. Writes: $gw_error_code.
 * Returns: 200, 404 model_not_found, 405 method_not_allowed, 500 internal_error.
 */
import { allModelsAllowed } from '../core/access';
import { assembleModels, filterModels, listBody, MODELS_ON_DEMAND_MS } from '../core/discovery';
import { gwError, modelNotFound } from '../core/errors';
import { cachedList, discoveryDict, readListing, readListings, rebuildList, refreshUpstream } from '../ngx/discoveryStore';
import { guard } from '../ngx/guard';
import { logFailure, requestLogger } from '../ngx/log';
import { onlyGet, replyError, replyJson } from '../ngx/reply';
import { routes } from '../ngx/table';
import { getVar } from '../ngx/vars';
import { missingZone } from '../core/zones';

const PREFIX = '/v1/models/';

/** Fetches the upstreams the refresher has not attempted lately, then rebuilds the cached list. */
function refreshStale(d: NgxSharedDict<string>, now: number): Promise<void> {
  const ups = Object.keys(routes.upstreams);
  const ps: Promise<unknown>[] = [];
  for (let i = 0; i < ups.length; i++) {
    const l = readListing(d, ups[i]);
    if (l === null || now - l.attempted_at > MODELS_ON_DEMAND_MS) ps.push(refreshUpstream(d, routes, ups[i]));
  }
  return Promise.all(ps).then(function () {
    rebuildList(d, routes);
  });
}

async function serve(r: NginxHTTPRequest, d: NgxSharedDict<string>): Promise<void> {
  let cached = cachedList(d);
  const now = Date.now();
  if (cached.body === undefined || now - cached.at > MODELS_ON_DEMAND_MS) {
    await refreshStale(d, now);
    cached = cachedList(d);
  }
  const spec = getVar(r, 'gw_key_models');
  const id = r.uri.length > PREFIX.length && r.uri.slice(0, PREFIX.length) === PREFIX ? r.uri.slice(PREFIX.length) : null;
  if (id === null && r.uri !== '/v1/models') {
    replyError(r, gwError('model_not_found', 'Give a model id: GET /v1/models/{model}.'));
    return;
  }
  if (id === null && allModelsAllowed(spec) && cached.body !== undefined) {
    replyJson(r, 200, cached.body);
    return;
  }
  const a = assembleModels(routes, readListings(d, routes));
  const data = filterModels(a.data, a.canonical, spec);
  if (id === null) {
    replyJson(r, 200, listBody(data));
    return;
  }
  for (let i = 0; i < data.length; i++) {
    if (data[i].id === id) {
      replyJson(r, 200, JSON.stringify(data[i]));
      return;
    }
  }
  replyError(r, modelNotFound(id));
}

export function models(r: NginxHTTPRequest): void {
  guard(r, 'models', function () {
    if (!onlyGet(r)) return;
    const d = discoveryDict();
    if (d === undefined) {
      requestLogger(r).error('models failed: ' + missingZone('gw_discovery').message);
      replyError(r, gwError('internal_error'));
      return;
    }
    serve(r, d).catch(function (e) {
      logFailure(requestLogger(r), 'models', e);
      replyError(r, gwError('internal_error'));
    });
  });
}

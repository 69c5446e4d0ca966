/**
 * gw.metadata: `js_content` in `location = /v1/metadata` (nginx/discovery-server.conf).
 *
 * Service discovery from the caches only (no backend call): gateway version, each model's
 * capabilities, endpoints, limits, health and listing state; schema docs/metadata.schema.json.
 * Reads: $gw_key_models (models the key may not use are left out). Writes: $gw_error_code.
 * Returns: 200, 405 method_not_allowed, 500 internal_error.
 */
import { assembleModels } from '../core/discovery';
import { gwError } from '../core/errors';
import { buildMetadata } from '../core/metadata';
import { discoveryDict, readListings } from '../ngx/discoveryStore';
import { guard } from '../ngx/guard';
import { healthView } from '../ngx/health';
import { replyError, replyJson } from '../ngx/reply';
import { routes } from '../ngx/table';
import { getVar } from '../ngx/vars';

export function metadata(r: NginxHTTPRequest): void {
  guard(r, 'metadata', function () {
    if (r.method !== 'GET' && r.method !== 'HEAD') {
      r.headersOut['Allow'] = 'GET, HEAD';
      replyError(r, gwError('method_not_allowed', 'Use GET for ' + r.uri + '.'));
      return;
    }
    const d = discoveryDict();
    const listings = d !== undefined ? readListings(d, routes) : Object.create(null);
    const doc = buildMetadata({
      table: routes,
      listings: listings,
      assembled: assembleModels(routes, listings),
      health: healthView(routes, d),
      keySpec: getVar(r, 'gw_key_models'),
      now: Date.now(),
      nginxVersion: ngx.version,
      njsVersion: njs.version,
    });
    replyJson(r, 200, JSON.stringify(doc));
  });
}

/**
 * gw.ops.metadata: `js_content` in `location = /v1/metadata` (nginx/discovery-server.conf).
 *
 * Service discovery from the caches only (no backend call): gateway version, each model's
 * capabilities, endpoints, limits, health and listing state; schema nginx/metadata-schema.json.
 * Reads: $gw_key_models (models the key may not use are left out). Writes: $gw_error_code.
 * Returns: 200, 405 method_not_allowed, 500 internal_error.
 */
import { assembleModels } from '../core/discovery';
import { buildMetadata } from '../core/metadata';
import { discoveryDict, readListings, readProbeError } from '../ngx/discoveryStore';
import { guard } from '../ngx/guard';
import { healthSnapshot } from '../ngx/health';
import { onlyGet, replyJson } from '../ngx/reply';
import { routes } from '../ngx/table';
import { getVar } from '../ngx/vars';

export function metadata(r: NginxHTTPRequest): void {
  guard(r, 'metadata', function () {
    if (!onlyGet(r)) return;
    const d = discoveryDict();
    const listings = d !== undefined ? readListings(d, routes) : Object.create(null);
    const doc = buildMetadata({
      table: routes,
      listings: listings,
      assembled: assembleModels(routes, listings),
      health: healthSnapshot(routes, Date.now(), readProbeError),
      keySpec: getVar(r, 'gw_key_models'),
      now: Date.now(),
      nginxVersion: ngx.version,
      njsVersion: njs.version,
    });
    replyJson(r, 200, JSON.stringify(doc));
  });
}

/**
 * The generated routing table (dist/routes/), typed, in two forms:
 *   sharedRoutes()  the per-request path: the copy nginx preloads once (`js_preload_object gw_routes`
 *                   in routes.conf) and shares read-only with every VM, so no request builds it.
 *                   Preloaded objects have no prototypes: index them, never call their methods.
 *   routes          a plain object built from gw-routes.js when a handler group that uses it loads
 *                   (admin, discovery: njs/build.mjs); its PURE mark lets esbuild drop it from
 *                   groups that only route.
 */
import generated from 'gw-routes.js';
import { RouteTable } from '../core/routes';

declare const gw_routes: unknown;

export const routes = /* @__PURE__ */ generated() as RouteTable;

let fallback: RouteTable | null = null;

export function sharedRoutes(): RouteTable {
  if (typeof gw_routes === 'object' && gw_routes !== null) return gw_routes as RouteTable;
  // No preload: a hand-written routes.conf, or QuickJS (js_engine qjs accepts js_preload_object and
  // ignores it). Build the table once per VM. Keeping it across the requests of a reused QuickJS
  // context is harmless: it is built only from gw-routes.js, which cannot change while this worker
  // lives (a reload starts new workers), and nothing writes to it (engine.test.ts routes many
  // requests through one worker without the preload).
  if (fallback === null) fallback = generated() as RouteTable;
  return fallback;
}

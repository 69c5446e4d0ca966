/**
 * The generated routing table (dist/routes/gw-routes.js), typed. Built when a handler group that
 * routes is loaded in a request's VM (njs/build.mjs), not for every request.
 */
import generated from 'gw-routes.js';
import { RouteTable } from '../core/routes';

export const routes = generated() as RouteTable;

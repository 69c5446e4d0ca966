/** The generated routing table (dist/routes/gw-routes.js), typed. Loaded once per nginx config load. */
import generated from 'gw-routes.js';
import { RouteTable } from '../core/routes';

export const routes = generated as RouteTable;

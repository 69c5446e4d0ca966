// The handler table nginx sees as `gw.<name>` (js_import gw from gateway.js). Handlers live in
// handlers/, one per nginx-facing concern; this file only lists them.
import { route } from './handlers/route';

export default { route: route };

// The handler table nginx sees as `gw.<name>` (js_import gw from gateway.js). Handlers live in
// handlers/, one per nginx-facing concern; this file only lists them.
import { admin } from './handlers/admin';
import { auth } from './handlers/auth';
import { keySync } from './handlers/keySync';
import { queueStatus } from './handlers/queueStatus';
import { queueSweep } from './handlers/queueSweep';
import { metadata } from './handlers/metadata';
import { metrics } from './handlers/metrics';
import { models } from './handlers/models';
import { readyz } from './handlers/readyz';
import { refresh } from './handlers/refresh';
import { requestEnd } from './handlers/requestEnd';
import { route } from './handlers/route';
import { usage } from './handlers/usage';
import { usageAdmin } from './handlers/usageAdmin';

export default { route: route, auth: auth, admin: admin, keySync: keySync, queueSweep: queueSweep, queueStatus: queueStatus,
  usage: usage, requestEnd: requestEnd, usageAdmin: usageAdmin,
  models: models, metadata: metadata, readyz: readyz, metrics: metrics, refresh: refresh };

/**
 * What an authenticated client gets, the same for an API key (handlers/auth.ts) and a signed token
 * (handlers/authJwt.ts): its id, models and tier in the request's variables, and its rate limit.
 */
import { gwError, GwError } from '../core/errors';
import { Tier } from '../core/queue';
import { modelsSpec } from '../core/keys';
import { checkRate, Counter } from '../core/rateLimit';
import { missingZone } from '../core/zones';
import { GwVars } from './vars';

export interface ClientGrant {
  id: string;
  models: '*' | string[];
  tier: Tier;
  rpm: number;
  burst: number;
}

/** Sets the client's variables and spends one request of its rate; the 429 to answer, or null. `what` names it ("API key", "token"). */
export function grant(r: NginxHTTPRequest, k: ClientGrant, what: string): GwError | null {
  return grantKey(r, k.id, modelsSpec(k.models), k.tier, k.rpm, k.burst, Date.now(), what);
}

/**
 * grant() for fields already in their variable form: `models` as $gw_key_models takes it (core/keys.ts
 * modelsSpec). The declared defaults are not written again: $gw_tier "normal", and $gw_key_models ""
 * for "*" (core/access.ts: both allow every model).
 */
export function grantKey(r: NginxHTTPRequest, id: string, models: string, tier: string, rpm: number, burst: number, nowMs: number, what: string): GwError | null {
  const v = r.variables as GwVars;
  v.gw_key_id = id;
  if (models !== '*') v.gw_key_models = models;
  if (tier !== 'normal') v.gw_tier = tier;
  if (rpm === 0 && burst === 0) return null;
  const d = ngx.shared.gw_rate;
  if (!d) throw missingZone('gw_rate');
  const rate = checkRate(d as unknown as Counter, id, rpm, burst, nowMs);
  if (rate === null) return null;
  v.gw_retry_after = String(rate.retryAfterSec);
  return gwError('rate_limit_exceeded', 'Rate limit reached for this ' + what + ' (' +
    (rate.limit === 'rpm' ? rpm + ' requests per minute' : burst + ' requests per second') +
    '). Retry after ' + rate.retryAfterSec + ' s.');
}

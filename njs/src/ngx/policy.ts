/**
 * What an authenticated client gets, the same for an API key (handlers/auth.ts) and a signed token
 * (handlers/authJwt.ts): its id, models and tier in the request's variables, and its rate limit.
 */
import { gwError, GwError } from '../core/errors';
import { Tier } from '../core/queue';
import { modelsSpec } from '../core/keys';
import { checkRate } from '../core/rateLimit';
import { numberDict } from './counter';
import { setVar } from './vars';

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

/** grant() for fields already in their variable form: `models` as $gw_key_models takes it (core/keys.ts modelsSpec). */
export function grantKey(r: NginxHTTPRequest, id: string, models: string, tier: string, rpm: number, burst: number, nowMs: number, what: string): GwError | null {
  setVar(r, 'gw_key_id', id);
  setVar(r, 'gw_key_models', models);
  setVar(r, 'gw_tier', tier);
  if (rpm === 0 && burst === 0) return null;
  const rate = checkRate(numberDict('gw_rate'), id, rpm, burst, nowMs);
  if (rate === null) return null;
  setVar(r, 'gw_retry_after', String(rate.retryAfterSec));
  return gwError('rate_limit_exceeded', 'Rate limit reached for this ' + what + ' (' +
    (rate.limit === 'rpm' ? rpm + ' requests per minute' : burst + ' requests per second') +
    '). Retry after ' + rate.retryAfterSec + ' s.');
}

/**
 * What an authenticated client gets, the same for an API key (handlers/auth.ts) and a signed token
 * (handlers/authJwt.ts): its id, models and tier in the request's variables, and its rate limit.
 */
import { gwError, GwError } from '../core/errors';
import { Tier } from '../core/queue';
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
  setVar(r, 'gw_key_id', k.id);
  setVar(r, 'gw_key_models', k.models === '*' ? '*' : JSON.stringify(k.models));
  setVar(r, 'gw_tier', k.tier);
  if (k.rpm === 0 && k.burst === 0) return null;
  const rate = checkRate(numberDict('gw_rate'), k.id, k.rpm, k.burst, Date.now());
  if (rate.ok) return null;
  setVar(r, 'gw_retry_after', String(rate.retryAfterSec));
  return gwError('rate_limit_exceeded', 'Rate limit reached for this ' + what + ' (' +
    (rate.limit === 'rpm' ? k.rpm + ' requests per minute' : k.burst + ' requests per second') +
    '). Retry after ' + rate.retryAfterSec + ' s.');
}

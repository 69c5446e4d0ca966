/** Runs a handler body; anything it throws becomes a logged OpenAI-shaped 500, never an HTML page. */
import { gwError } from '../core/errors';
import { logFailure, requestLogger } from './log';
import { replyError } from './reply';

export function guard(r: NginxHTTPRequest, handler: string, fn: () => void): void {
  try {
    fn();
  } catch (e) {
    failed(r, handler, e);
  }
}

/**
 * What guard() does with an exception, for a handler that runs its own try/catch (per-request
 * handlers: no closure built per request).
 */
export function failed(r: NginxHTTPRequest, handler: string, e: unknown): void {
  logFailure(requestLogger(r), handler, e);
  replyError(r, gwError('internal_error'));
}

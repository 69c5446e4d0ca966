/**
 * A handler's last resort: log what failed (error log, with the stack) and answer the client
 * 500 internal_error. Apart from the handlers so that a request that does not fail never
 * instantiates the logging helpers: it exports functions only and can be loaded as a cold module
 * (njs/handlers.json `cold`).
 */
import { gwError } from '../core/errors';
import { logFailure, requestLogger } from './log';
import { replyError } from './reply';

export function replyFailed(r: NginxHTTPRequest, what: string, e: unknown): void {
  logFailure(requestLogger(r), what, e);
  replyError(r, gwError('internal_error'));
}

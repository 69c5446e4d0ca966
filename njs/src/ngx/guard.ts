/** Runs a handler body; anything it throws becomes a logged OpenAI-shaped 500, never an HTML page. */
import { gwError } from '../core/errors';
import { logFailure, requestLogger } from './log';
import { replyError } from './reply';

export function guard(r: NginxHTTPRequest, handler: string, fn: () => void): void {
  try {
    fn();
  } catch (e) {
    logFailure(requestLogger(r), handler, e);
    replyError(r, gwError('internal_error'));
  }
}

/** Runs a handler body; anything it throws becomes a logged OpenAI-shaped 500, never an HTML page. */
import { gwError } from '../core/errors';
import { replyError } from './reply';

export function guard(r: NginxHTTPRequest, handler: string, fn: () => void): void {
  try {
    fn();
  } catch (e) {
    r.error('gw: ' + handler + ' failed: ' + String(e && (e as Error).stack ? (e as Error).stack : e));
    replyError(r, gwError('internal_error'));
  }
}

/** The one exit path for gateway-made errors: status, OpenAI JSON body, content type, log variable. */
import { GwError, gwError } from '../core/errors';
import { setVar } from './vars';

type ReplyRequest = Pick<NginxHTTPRequest, 'headersOut' | 'return' | 'variables'>;

export function replyError(r: ReplyRequest, e: GwError): void {
  r.headersOut['Content-Type'] = 'application/json';
  setVar(r, 'gw_error_code', e.code);
  r.return(e.status, e.body);
}

export function replyJson(r: ReplyRequest, status: number, body: string): void {
  r.headersOut['Content-Type'] = 'application/json';
  r.return(status, body);
}

/** For read-only endpoints: true for GET/HEAD; otherwise answers 405 with Allow and returns false. */
export function onlyGet(r: ReplyRequest & Pick<NginxHTTPRequest, 'method' | 'uri'>): boolean {
  if (r.method === 'GET' || r.method === 'HEAD') return true;
  r.headersOut['Allow'] = 'GET, HEAD';
  replyError(r, gwError('method_not_allowed', 'Use GET for ' + r.uri + '.'));
  return false;
}

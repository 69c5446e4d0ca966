/** The one exit path for gateway-made errors: status, OpenAI JSON body, content type, log variable. */
import { GwError } from '../core/errors';
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

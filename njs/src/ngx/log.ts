/**
 * The one error-log writer: leveled, with the "gw: " prefix (core/logText.ts), over nginx's `ngx`
 * (js_periodic handlers, no request) or a request `r` (its lines carry the client and request).
 */
import { failedText, LOG_PREFIX } from '../core/logText';

type Sink = Pick<NgxObject, 'log' | 'INFO' | 'WARN' | 'ERR'>;

export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export function makeLogger(sink: Sink): Logger {
  return {
    info: function (msg: string) { sink.log(sink.INFO, LOG_PREFIX + msg); },
    warn: function (msg: string) { sink.log(sink.WARN, LOG_PREFIX + msg); },
    error: function (msg: string) { sink.log(sink.ERR, LOG_PREFIX + msg); },
  };
}

export function requestLogger(r: Pick<NginxHTTPRequest, 'log' | 'warn' | 'error'>): Logger {
  return {
    info: function (msg: string) { r.log(LOG_PREFIX + msg); },
    warn: function (msg: string) { r.warn(LOG_PREFIX + msg); },
    error: function (msg: string) { r.error(LOG_PREFIX + msg); },
  };
}

/** Logs that `what` threw `e`, with its stack, at error level. */
export function logFailure(log: Logger, what: string, e: unknown): void {
  log.error(failedText(what, e));
}

/** A leveled error-log writer with the "gw:" prefix, over an injected ngx-like sink. */
type Sink = Pick<NgxObject, 'log' | 'INFO' | 'WARN' | 'ERR'>;

export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export function makeLogger(sink: Sink): Logger {
  return {
    info: function (msg: string) { sink.log(sink.INFO, 'gw: ' + msg); },
    warn: function (msg: string) { sink.log(sink.WARN, 'gw: ' + msg); },
    error: function (msg: string) { sink.log(sink.ERR, 'gw: ' + msg); },
  };
}

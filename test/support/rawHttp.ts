/**
 * Raw bytes over TCP, for requests no HTTP client will send (broken request lines, duplicate or
 * invalid headers, unnormalized paths, non-UTF-8 bytes): fetch and undici validate or normalize
 * them before they leave the process.
 */
import { connect } from 'node:net';

export interface RawResponse {
  /** Everything the server sent before it closed the connection. */
  raw: Buffer;
  /** Status code of the first response, or 0 when there was no HTTP/1.x status line. */
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Parses the first response in `raw` (Content-Length framed, or the rest of the bytes). */
export function parseRawResponse(raw: Buffer): RawResponse {
  const text = raw.toString('latin1');
  const m = /^HTTP\/1\.[01] (\d{3})[^\r\n]*\r\n/.exec(text);
  if (!m) return { raw, status: 0, headers: {}, body: text };
  const end = text.indexOf('\r\n\r\n');
  const headers: Record<string, string> = {};
  for (const line of text.slice(m[0].length, end).split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
  }
  let body = text.slice(end + 4);
  if (headers['content-length'] !== undefined) body = body.slice(0, Number(headers['content-length']));
  return { raw, status: Number(m[1]), headers, body: Buffer.from(body, 'latin1').toString('utf8') };
}

/** True once `raw` holds a whole Content-Length-framed response. */
function complete(raw: Buffer): boolean {
  const text = raw.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  if (!/^HTTP\/1\.[01] /.test(text) || end < 0) return false;
  const m = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end));
  return m !== null && raw.length - (end + 4) >= Number(m[1]);
}

/**
 * Sends `request` (a latin1 string: each char is one byte, or a Buffer) and reads until the first
 * response is complete or the server closes. `halfClose` (default true) ends our side right after
 * the request, so a server that keeps the connection alive closes it once it has answered; pass
 * false for a proxied request (nginx takes an early FIN as a client abort, 499) or to leave a
 * request unfinished.
 */
export function rawRequest(port: number, request: string | Buffer, opts: { halfClose?: boolean; host?: string } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const s = connect(port, opts.host ?? '127.0.0.1');
    const chunks: Buffer[] = [];
    // A guard against a hung test, not an assertion on speed.
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`rawRequest: no close within 90 s; got ${JSON.stringify(Buffer.concat(chunks).toString('latin1').slice(0, 300))}`));
    }, 90_000);
    s.on('data', (d: Buffer) => {
      chunks.push(d);
      if (complete(Buffer.concat(chunks))) s.destroy();
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      // nginx may reset after answering an oversized request; what it sent still counts.
      if (e.code !== 'ECONNRESET' && e.code !== 'EPIPE') {
        clearTimeout(timer);
        reject(e);
      }
    });
    s.on('close', () => {
      clearTimeout(timer);
      resolve(parseRawResponse(Buffer.concat(chunks)));
    });
    s.write(typeof request === 'string' ? Buffer.from(request, 'latin1') : request);
    if (opts.halfClose !== false) s.end();
  });
}

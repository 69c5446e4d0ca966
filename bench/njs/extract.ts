/**
 * Bench-only njs module (bench/extract.ts bundles it with the gateway's esbuild settings): what it
 * costs, inside nginx, to find the "model" of a request body with the gateway's byte scanner
 * (njs/src/core/modelScan.ts) versus JSON.parse.
 *   /loop?scan=N&parse=M   one request: first access of r.requestBuffer and r.requestText, then N scans,
 *                          N whole-body Buffer.indexOf passes and M JSON.parse calls; answers the ms as JSON
 *   /noop /scan /parse     js_content that answers {"model":...} after nothing / scanModel / JSON.parse,
 *                          for end-to-end req/s under autocannon
 *   /version               njs.version
 * Typed with a local request shape, so the Node-side type-check (test/tsconfig.json) covers it.
 */
import { scanModel } from '../../njs/src/core/modelScan';
import { Bytes } from '../../njs/src/core/bytes';

interface Req {
  args: { [k: string]: string | undefined };
  readonly requestBuffer?: Bytes;
  readonly requestText?: string;
  headersOut: { [k: string]: string | undefined };
  return(status: number, body?: string): void;
}
declare const njs: { version: string };

function reply(r: Req, status: number, o: unknown): void {
  r.headersOut['Content-Type'] = 'application/json';
  r.return(status, JSON.stringify(o));
}

function loop(r: Req): void {
  const nScan = Number(r.args.scan || 0);
  const nParse = Number(r.args.parse || 0);
  let t = Date.now();
  const buf = r.requestBuffer;
  const bufferMs = Date.now() - t;
  if (!buf) {
    reply(r, 500, { error: 'no request body in memory' });
    return;
  }
  let scanned = '';
  t = Date.now();
  for (let i = 0; i < nScan; i++) {
    const s = scanModel(buf);
    scanned = s.ok ? s.model : 'error:' + s.error;
  }
  const scanTotal = Date.now() - t;
  // The floor of any Buffer scanner: one native indexOf pass over the whole body (NUL never occurs).
  let miss = 0;
  t = Date.now();
  for (let i = 0; i < nScan; i++) miss += buf.indexOf(0, 0);
  const indexOfTotal = Date.now() - t;
  t = Date.now();
  const text = r.requestText;
  const textMs = Date.now() - t;
  let parsed = '';
  t = Date.now();
  for (let i = 0; i < nParse; i++) parsed = JSON.parse(text as string).model;
  const parseTotal = Date.now() - t;
  reply(r, 200, {
    bytes: buf.length, scanned: scanned, parsed: parsed,
    bufferMs: bufferMs, textMs: textMs, scanIters: nScan, parseIters: nParse,
    scanTotalMs: scanTotal, parseTotalMs: parseTotal, indexOfTotalMs: indexOfTotal, indexOfMiss: miss === -nScan,
  });
}

function noop(r: Req): void {
  reply(r, 200, { model: 'not-read' });
}

function scan(r: Req): void {
  const s = scanModel(r.requestBuffer as Bytes);
  if (!s.ok) {
    reply(r, 400, { error: s.error });
    return;
  }
  reply(r, 200, { model: s.model });
}

function parse(r: Req): void {
  reply(r, 200, { model: JSON.parse(r.requestText as string).model });
}

function version(r: Req): void {
  r.return(200, njs.version);
}

export default { loop: loop, noop: noop, scan: scan, parse: parse, version: version };

/**
 * gw.usage: `js_body_filter gw.usage buffer_type=buffer;` in @gw_upstream and
 * @gw_upstream_rewrite (nginx/gateway-server.conf), i.e. on every proxied response body.
 *
 * Passes each chunk on unchanged and at once (r.sendBuffer; nothing is held back, so SSE still
 * streams), and on the side:
 *   - finds the `usage` object of a JSON response or of the final SSE event (core/usage.ts) and
 *     writes $gw_prompt_tokens, $gw_completion_tokens, $gw_total_tokens for the access log and
 *     the usage ledger (handlers/requestEnd.ts);
 *   - for `text/event-stream` responses, writes $gw_ttft_ms: ms from the start of the request to the
 *     first body bytes (time to first token as the client sees it, queue wait included), and sets
 *     $gw_stream to 1.
 * A client that disconnects mid-stream means this filter never sees `last`: nothing here depends
 * on it; the log phase does the accounting. Never fails the response: errors are logged only.
 */
import { UsageScanner, UsageScannerApi, lastUsageKey, usageScanner } from '../core/usage';
import { errorText } from '../core/logText';

// The state of the response being filtered. njs's own engine gives each request a fresh VM, but
// QuickJS reuses a context for later requests (js_context_reuse, 128 by default), so module state
// outlives its request: it belongs to the request object `owner` and starts afresh on the first
// chunk of any other one. Every engine CI runs (njs 0.8.9, njs 1.0.x, QuickJS) hands all chunks of
// a response the same `r` and each request a new one (no variable read is needed to tell them
// apart). A request that ends without `last` (client gone) leaves state the next one discards.
let owner: unknown = null;
// General-path scanner (core/usage.ts): null while nothing is carried between chunks, the usual
// case of a JSON answer, which the fast path below takes without allocating one.
let scanner: UsageScanner | null = null;
// The general path's functions, built on the first response of this VM that needs them (an SSE
// stream, a usage object the fast path leaves): a VM that only sees plain JSON never creates them.
let api: UsageScannerApi | null = null;
let sse = false;
let firstSeen = false;

type FilterRequest = Pick<NginxHTTPRequest, 'sendBuffer' | 'variables' | 'error'>;

export function usage(r: FilterRequest, data: Buffer | string, flags: { last: boolean; flush?: boolean }): void {
  const last = flags.last;
  // Both flags explicitly: QuickJS reads an absent `flush` as false and then holds SSE back until the
  // end, where the njs engine keeps the buffer's own flush flag. Flushing every chunk is what a
  // streamed answer needs; a buffered one arrives in few, large chunks. The engine's own flags
  // object carries `last` already: adding `flush` to it costs less than an options object.
  flags.flush = true;
  r.sendBuffer(data, flags);
  // The usual end of a response: the empty last chunk of the request the earlier chunks came from.
  // The next chunk, of whatever request, starts afresh (an engine that reused one `r` object across
  // requests could not carry this one's state over).
  if (last && r === owner && data.length === 0) {
    owner = null;
    return;
  }
  // Declared here, not in the blocks below: a block-scoped binding costs njs 0.8 a scope per entry.
  // -2: this chunk not searched for a `"usage"` key yet.
  let at = -2;
  let close = -1;
  let o: { prompt_tokens?: unknown; completion_tokens?: unknown; total_tokens?: unknown } | null = null;
  let p: unknown;
  let c: unknown;
  let t: unknown;
  // r.variables, fetched once per call (each fetch costs njs 0.8 a few hundred instructions).
  let v: NginxHTTPRequest['variables'] | null = null;
  let n = 0;
  let q = -1;
  let ct: string | undefined;
  let buf: Buffer;
  try {
    if (r !== owner) {
      owner = r;
      scanner = null;
      firstSeen = false;
      // $sent_http_content_type: the response's Content-Type as a variable read (r.headersOut
      // costs more in njs 0.8). The usual JSON type is told apart without a search.
      v = r.variables;
      ct = v.sent_http_content_type;
      sse = typeof ct === 'string' && ct !== 'application/json' && ct.indexOf('text/event-stream') >= 0;
      // The route reads "stream" only after the model in large bodies (core/modelScan.ts): an SSE
      // answer says it for sure.
      if (sse) v.gw_stream = '1';
    }
    if (last) owner = null;
    if (data.length === 0) return;
    if (sse && !firstSeen) {
      firstSeen = true;
      if (v === null) v = r.variables;
      ct = v.request_time;
      n = ct ? +ct : NaN;
      // Math.round without touching Math (a built-in's first use in a VM costs njs 0.8 a few
      // thousand instructions): $request_time is seconds with 3 decimals, so n * 1000 is within a
      // rounding error of a whole number and floor(x + 0.5), i.e. y - y % 1, is that number.
      if (n >= 0) {
        n = n * 1000 + 0.5;
        v.gw_ttft_ms = '' + (n - n % 1);
      }
    }
    buf = typeof data === 'string' ? Buffer.from(data) : data;
    if (scanner === null && !sse) {
      // The usual JSON answer in few native calls: the chunk's last `"usage":{` opens a flat object
      // that closes in the chunk. JSON.parse of the text up to the first `}` succeeds only when that
      // `}` closes the usage object itself (a nested object or a `}` inside a string leaves it
      // unbalanced), so anything else throws and goes to the general path below. An SSE event
      // rarely holds the usage; the general path's own fast check covers the one that does.
      // (A byte-by-byte reader of the usual object costs more than this decode and parse in njs.)
      at = buf.lastIndexOf('"usage"');
      if (at >= 0 && buf[at + 7] === 58 /* : */ && buf[at + 8] === 123 /* { */) close = buf.indexOf(125 /* } */, at + 9);
      if (close > at && close <= at + 2048) {
        try {
          o = JSON.parse(buf.toString('utf8', at + 8, close + 1));
        } catch (e) {
          o = null;
        }
      }
      // Plain non-negative integers below 2^31 only, which `(x | 0) === x` tells in one step for
      // any value (core/usage.ts parseUsageObject covers the rest, with the same result for a
      // larger count: a fraction, a missing field, a derived total).
      if (o !== null) {
        p = o.prompt_tokens;
        c = o.completion_tokens;
        t = o.total_tokens;
        if (((p as number) | 0) === p && ((c as number) | 0) === c && ((t as number) | 0) === t && (p as number) >= 0
          && (c as number) >= 0 && (t as number) >= 0) {
          if (v === null) v = r.variables;
          v.gw_prompt_tokens = '' + p;
          v.gw_completion_tokens = '' + c;
          v.gw_total_tokens = '' + t;
          // As the general path: keep the tail if it may begin a `"usage"` key split across
          // chunks, i.e. a last quote within the final 6 bytes followed by nothing or by `u`. Up
          // to `close` every quote ends a key or a string of the object just read, so it is
          // followed by `:`, `,`, `]` or `}`: only the bytes after `close` can hold one (a JSON
          // answer ends `28}}`, nothing to look at then).
          n = buf.length;
          if (close < n - 2 || (close === n - 2 && buf[n - 1] !== 125 /* } */)) {
            q = buf.lastIndexOf(34);
            if (q > close && q > n - 7 && (q === n - 1 || buf[q + 1] === 117 /* u */)) {
              scanner = { usage: { prompt: p, completion: c, total: t }, capture: null, carry: buf.toString('utf8', q, n) };
            }
          }
          return;
        }
      }
    }
    if (scanner === null) scanner = { usage: null, capture: null, carry: '' };
    // Most chunks of a stream hold no `"usage"` key and continue nothing: what the general path does
    // with one (keep its last bytes if they may start a key split across chunks) without its calls.
    // The JSON path above has searched this chunk already when it ran (at >= -1).
    n = buf.length;
    if (scanner.capture === null && scanner.carry === '' && n >= 6 && (at === -2 ? lastUsageKey(buf) : at) < 0) {
      q = buf.lastIndexOf(34);
      if (q > n - 7 && (q === n - 1 || buf[q + 1] === 117 /* u */)) scanner.carry = buf.toString('utf8', q, n);
      return;
    }
    if (api === null) api = usageScanner();
    if (api.feed(scanner, buf) && scanner.usage !== null) {
      if (v === null) v = r.variables;
      v.gw_prompt_tokens = '' + scanner.usage.prompt;
      v.gw_completion_tokens = '' + scanner.usage.completion;
      v.gw_total_tokens = '' + scanner.usage.total;
    }
  } catch (e) {
    r.error('gw: usage failed: ' + errorText(e));
  }
}

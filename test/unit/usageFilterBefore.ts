/**
 * The gw.usage body filter as it was before its cost was cut (njs/src/handlers/usage.ts at
 * cd3101c), kept only as the reference the differential test (usageFilter.test.ts) compares the
 * current filter with: same js_vars, same bytes and flags to the client, for any response and split.
 */
import { UsageScanner, UsageScannerApi, usageScanner } from '../../njs/src/core/usage';
import { errorText } from '../../njs/src/core/logText';

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

// The two option objects sendBuffer is called with, made once per VM instead of once per chunk.
const LAST = { last: true, flush: true };
const FLUSH = { last: false, flush: true };

type FilterRequest = {
  sendBuffer(data: Buffer | string, options: { last: boolean; flush: boolean }): void;
  variables: Record<string, string | undefined>;
  error(message: string): void;
};

/**
 * The usual JSON answer in few native calls: the chunk's last `"usage":{` opens a flat object that
 * closes in the chunk. JSON.parse of the text up to the first `}` succeeds only when that `}`
 * closes the usage object itself (a nested object or a `}` inside a string leaves it unbalanced),
 * so anything else throws and goes to the general path. Writes the token js_vars and returns true
 * when it took the chunk.
 */
function fastUsage(r: FilterRequest, buf: Buffer): boolean {
  const at = buf.lastIndexOf('"usage"');
  if (at < 0 || buf[at + 7] !== 58 /* : */ || buf[at + 8] !== 123 /* { */) return false;
  const close = buf.indexOf(125 /* } */, at + 9);
  if (close < 0 || close > at + 2048) return false;
  let o: { prompt_tokens?: unknown; completion_tokens?: unknown; total_tokens?: unknown };
  try {
    o = JSON.parse(buf.toString('utf8', at + 8, close + 1));
  } catch (_e) {
    return false;
  }
  // Plain non-negative integers only (core/usage.ts parseUsageObject covers the rest: a fraction,
  // a missing field, a derived total).
  const p = o.prompt_tokens;
  const c = o.completion_tokens;
  const t = o.total_tokens;
  if (typeof p !== 'number' || typeof c !== 'number' || typeof t !== 'number' || !(p >= 0 && c >= 0 && t >= 0)
    || p % 1 !== 0 || c % 1 !== 0 || t % 1 !== 0 || t === Infinity) return false;
  const v = r.variables;
  v.gw_prompt_tokens = '' + p;
  v.gw_completion_tokens = '' + c;
  v.gw_total_tokens = '' + t;
  // As the general path: keep the tail if it may begin a `"usage"` key split across chunks, i.e. a
  // last quote within the final 6 bytes followed by nothing or by `u` (a JSON answer ends `28}}`).
  const n = buf.length;
  const q = buf.lastIndexOf(34);
  if (q > n - 7 && (q === n - 1 || buf[q + 1] === 117 /* u */)) {
    scanner = { usage: { prompt: p, completion: c, total: t }, capture: null, carry: buf.toString('utf8', q, n) };
  }
  return true;
}

export function usage(r: FilterRequest, data: Buffer | string, flags: { last: boolean }): void {
  // Both flags explicitly: QuickJS reads an absent `flush` as false and then holds SSE back until the
  // end, where the njs engine keeps the buffer's own flush flag. Flushing every chunk is what a
  // streamed answer needs; a buffered one arrives in few, large chunks.
  r.sendBuffer(data, flags.last ? LAST : FLUSH);
  try {
    if (r !== owner) {
      owner = r;
      scanner = null;
      firstSeen = false;
      // $sent_http_content_type: the response's Content-Type as a variable read (r.headersOut
      // costs several times more in njs 0.8).
      const ct = r.variables.sent_http_content_type;
      sse = typeof ct === 'string' && ct.indexOf('text/event-stream') >= 0;
      // The route reads "stream" only after the model in large bodies (core/modelScan.ts): an SSE
      // answer says it for sure.
      if (sse) r.variables.gw_stream = '1';
    }
    // The response is over: the next chunk, of whatever request, starts afresh (an engine that
    // reused one `r` object across requests could not carry this one's state over).
    if (flags.last) owner = null;
    if (data.length === 0) return;
    if (sse && !firstSeen) {
      firstSeen = true;
      const rt = r.variables.request_time;
      const t = rt ? +rt : NaN;
      if (t >= 0) r.variables.gw_ttft_ms = '' + Math.round(t * 1000);
    }
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    if (scanner === null) {
      // An SSE event rarely holds the usage; the general path's own fast check covers the one that does.
      if (!sse && fastUsage(r, buf)) return;
      scanner = { usage: null, capture: null, carry: '' };
    }
    if (api === null) api = usageScanner();
    if (api.feed(scanner, buf) && scanner.usage !== null) {
      const u = scanner.usage;
      const v = r.variables;
      v.gw_prompt_tokens = '' + u.prompt;
      v.gw_completion_tokens = '' + u.completion;
      v.gw_total_tokens = '' + u.total;
    }
  } catch (e) {
    r.error('gw: usage failed: ' + errorText(e));
  }
}

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
import { feedUsage, newUsageScanner, UsageScanner } from '../core/usage';
import { setVar } from '../ngx/vars';
import { errorText } from '../core/logText';

// The scanner of the response being filtered. njs's own engine gives each request a fresh VM, but
// QuickJS reuses a context for later requests (js_context_reuse, 128 by default), so module state
// outlives its request: it is tagged with the request's $request_id and started afresh whenever a
// chunk of another request arrives. A request that ends without `last` (client gone) leaves stale
// state that the next request's first chunk discards.
let owner = '';
let ownerR: unknown = null;
let scanner: UsageScanner | null = null;
let sse = false;
let firstSeen = false;

// The two option objects sendBuffer is called with, made once per VM instead of once per chunk.
const LAST = { last: true, flush: true };
const FLUSH = { last: false, flush: true };

type FilterRequest = Pick<NginxHTTPRequest, 'sendBuffer' | 'headersOut' | 'variables' | 'error'>;

export function usage(r: FilterRequest, data: Buffer | string, flags: { last: boolean }): void {
  // Both flags explicitly: QuickJS reads an absent `flush` as false and then holds SSE back until the
  // end, where the njs engine keeps the buffer's own flush flag. Flushing every chunk is what a
  // streamed answer needs; a buffered one arrives in few, large chunks.
  r.sendBuffer(data, flags.last ? LAST : FLUSH);
  try {
    // The id is read once per request object: njs's engine hands every chunk of a request the same
    // `r`, so later chunks skip the variable read (njs 0.8 pays for each); an engine that made a new
    // `r` per chunk would still be told apart by the id.
    if (r !== ownerR || scanner === null) {
      ownerR = r;
      const id = r.variables.request_id || '';
      if (scanner === null || id !== owner) {
        owner = id;
        firstSeen = false;
        scanner = newUsageScanner();
        const ct = r.headersOut['Content-Type'];
        sse = typeof ct === 'string' && ct.indexOf('text/event-stream') >= 0;
        // The route reads "stream" only after the model in large bodies (core/modelScan.ts): an SSE
        // answer says it for sure.
        if (sse) setVar(r, 'gw_stream', '1');
      }
    }
    // The response is over: the next chunk, of whatever request, reads its id again (an engine
    // that reused one `r` object across requests could not carry this one's state over).
    if (flags.last) ownerR = null;
    if (data.length === 0) return;
    if (sse && !firstSeen) {
      firstSeen = true;
      const t = parseFloat(r.variables.request_time || '');
      if (t >= 0) setVar(r, 'gw_ttft_ms', String(Math.round(t * 1000)));
    }
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    if (feedUsage(scanner, buf) && scanner.usage !== null) {
      // Inline (no setVar/String calls): njs 0.8 pays for each call, and this runs per response.
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

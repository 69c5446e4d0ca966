/**
 * Token usage from a response body seen chunk by chunk: the `"usage":{...}` object of a JSON
 * response, or of the final SSE event when the client asked for `stream_options.include_usage`
 * (with vLLM's `continuous_usage_stats` every event carries one; the last one wins).
 *
 * Built for a body filter that must not hold the stream back: each chunk is searched natively with
 * Buffer.lastIndexOf, nothing is copied unless a `"usage"` key is found, and across chunk
 * boundaries only a few bytes are kept (a key split in two, or an object that is still open).
 * njs 0.8: no GC, so every allocation lives until the request ends; keep per-chunk work small.
 *
 * Inside a JSON string a quote is always escaped, so the bytes `"usage"` followed by `:` can only
 * be a key; a value of `null` (OpenAI's non-final chunks) is skipped.
 */

export interface Usage {
  prompt: number;
  completion: number;
  total: number;
}

export interface UsageScanner {
  /** The last complete usage object seen so far, or null. */
  usage: Usage | null;
  /** Text of a usage object that started in an earlier chunk and is not closed yet. */
  capture: string | null;
  /** The tail of the previous chunk when it could be the start of a split `"usage"` key. */
  carry: string;
}

type Probe = { state: 'done'; usage: Usage } | { state: 'open' } | { state: 'bad' };

/** The scanner's functions (usageScanner builds them). */
export interface UsageScannerApi {
  /** A scanner with nothing seen yet. */
  create(): UsageScanner;
  /** Feeds one body chunk (any size, any split). Returns true when `s.usage` changed. */
  feed(s: UsageScanner, buf: Buffer): boolean;
  /** `{"prompt_tokens":..}` text → Usage; null when it carries no token count. */
  parse(text: string): Usage | null;
  /** `text` starts with `"usage"`: a complete object (done), cut off (open), or not one (bad). */
  probe(text: string): Probe;
}

/**
 * `buf.lastIndexOf('"usage"')` for less: njs 0.8 searches a string needle at ~35 instructions per
 * byte and a single byte at ~7, and the key's `g` is rare in what a model server writes around it
 * (none in an SSE chunk of text, one in vLLM's "logprobs"). So each `g` from the end is checked in
 * place, and after a few that are not the key's the string search takes the rest of the chunk.
 * Top level, not in usageScanner: the body filter's JSON fast path calls it too.
 */
export function lastUsageKey(buf: Buffer): number {
  let g = buf.lastIndexOf(103 /* g */);
  let k = 0;
  for (; k < 6; k++) {
    // A key's `g` is 4 bytes into it.
    if (g < 4) return -1;
    if (buf[g - 4] === 34 && buf[g - 3] === 117 && buf[g - 2] === 115 && buf[g - 1] === 97 && buf[g + 1] === 101
      && buf[g + 2] === 34) return g - 4;
    g = buf.lastIndexOf(103, g - 1);
  }
  return g < 4 ? -1 : buf.lastIndexOf('"usage"', g - 4);
}

/**
 * Builds the scanner's functions. They are declared inside this one function so that a VM that
 * never needs them does not create them: njs 0.8 instantiates every top-level function of a
 * handler group in each request's VM, and the usual JSON answer is taken by the body filter's own
 * fast path (handlers/usage.ts). A caller builds them once and keeps the result.
 */
export function usageScanner(): UsageScannerApi {
  const KEY = '"usage"';
  /** A usage object longer than this is not one (vLLM's is ~100 bytes with details). */
  const MAX_OBJECT = 2048;
  /** How many `"usage"` matches per chunk are examined, from the last one backwards. */
  const MAX_CANDIDATES = 4;

  function newUsageScanner(): UsageScanner {
    return { usage: null, capture: null, carry: '' };
  }

  function isWs(c: number): boolean {
    return c === 32 || c === 10 || c === 13 || c === 9;
  }

  // No isFinite/Math.floor for the usual integer: njs 0.8 pays for every call, and this runs per response.
  function tokenCount(v: unknown): number | null {
    if (typeof v !== 'number' || !(v >= 0) || v === Infinity) return null;
    return v % 1 === 0 ? v : Math.floor(v);
  }

  /** `{"prompt_tokens":..}` text → Usage; null when it carries no token count. */
  function parseUsageObject(text: string): Usage | null {
    let o: unknown;
    try {
      o = JSON.parse(text);
    } catch (e) {
      return null;
    }
    if (o === null || typeof o !== 'object') return null;
    const u = o as { prompt_tokens?: unknown; completion_tokens?: unknown; total_tokens?: unknown };
    const p = tokenCount(u.prompt_tokens);
    const c = tokenCount(u.completion_tokens);
    const t = tokenCount(u.total_tokens);
    if (p === null && c === null && t === null) return null;
    const prompt = p !== null ? p : 0;
    const completion = c !== null ? c : 0;
    return { prompt: prompt, completion: completion, total: t !== null ? t : prompt + completion };
  }

  /**
   * `text` starts with `"usage"`: is the value a complete object (done), cut off by the end of the
   * available text (open), or something else (bad: null, not a key, too long)?
   */
  function probeUsage(text: string): Probe {
    let i = KEY.length;
    const n = text.length;
    while (i < n && isWs(text.charCodeAt(i))) i++;
    if (i >= n) return { state: 'open' };
    if (text.charCodeAt(i) !== 58 /* : */) return { state: 'bad' };
    i++;
    while (i < n && isWs(text.charCodeAt(i))) i++;
    if (i >= n) return { state: 'open' };
    if (text.charCodeAt(i) !== 123 /* { */) return { state: 'bad' };
    const start = i;
    // Fast path, a flat object (vLLM's): the first `}` closes it. Native indexOf is ~5x cheaper in
    // njs than walking the characters; anything else (nested *_details objects) takes the walk.
    const close = text.indexOf('}', start);
    const open = text.indexOf('{', start + 1);
    if (close > 0 && (open < 0 || open > close)) {
      const flat = parseUsageObject(text.slice(start, close + 1));
      if (flat !== null) return { state: 'done', usage: flat };
    }
    let depth = 0;
    for (; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c === 34 /* " */) {
        // Jump over a string, honouring backslash escapes.
        i++;
        while (i < n && text.charCodeAt(i) !== 34) {
          if (text.charCodeAt(i) === 92 /* \ */) i++;
          i++;
        }
        if (i >= n) break;
      } else if (c === 123) {
        depth++;
      } else if (c === 125 /* } */) {
        depth--;
        if (depth === 0) {
          const u = parseUsageObject(text.slice(start, i + 1));
          return u !== null ? { state: 'done', usage: u } : { state: 'bad' };
        }
      }
    }
    return n - start >= MAX_OBJECT ? { state: 'bad' } : { state: 'open' };
  }

  /** Continues an open capture with the start of this chunk. */
  function continueCapture(s: UsageScanner, buf: Buffer): void {
    const cap = s.capture as string;
    const take = Math.min(buf.length, MAX_OBJECT + KEY.length + 16 - cap.length);
    const text = take > 0 ? cap + buf.toString('utf8', 0, take) : cap;
    const p = probeUsage(text);
    if (p.state === 'done') {
      s.usage = p.usage;
      s.capture = null;
    } else if (p.state === 'bad' || take < buf.length) {
      s.capture = null; // too long to be a usage object: give up on this one
    } else {
      s.capture = text;
    }
  }

  /** Examines the `"usage"` keys of one chunk from the last backwards; the last complete one wins. */
  function scanCandidates(s: UsageScanner, buf: Buffer): void {
    let at = buf.lastIndexOf(KEY);
    let opened = false;
    for (let k = 0; at >= 0 && k < MAX_CANDIDATES; k++) {
      const end = Math.min(buf.length, at + MAX_OBJECT + KEY.length + 16);
      const text = buf.toString('utf8', at, end);
      const p = probeUsage(text);
      if (p.state === 'done') {
        s.usage = p.usage;
        return;
      }
      if (p.state === 'open' && !opened && end === buf.length) {
        // The latest usage continues in the next chunk; an earlier complete one still counts meanwhile.
        s.capture = text;
        opened = true;
      }
      at = at > 0 ? buf.lastIndexOf(KEY, at - 1) : -1;
    }
  }

  /**
   * The usual case in few calls: a fresh scanner (nothing carried over) and a chunk whose last
   * `"usage"` key is written `"usage":{...}` with a flat object that closes in this chunk. TAKEN
   * when it took the chunk; NO_KEY when the chunk holds no `"usage"` at all (most SSE events); 0
   * leaves the chunk, untouched, to the general path.
   */
  const TAKEN = 1;
  const NO_KEY = -1;

  function fastUsage(s: UsageScanner, buf: Buffer, n: number): number {
    const at = lastUsageKey(buf);
    if (at < 0) return NO_KEY;
    if (buf[at + 7] !== 58 /* : */ || buf[at + 8] !== 123 /* { */) return 0;
    const close = buf.indexOf(125 /* } */, at + 9);
    if (close < 0 || close > at + MAX_OBJECT) return 0;
    const open = buf.indexOf(123, at + 9);
    if (open >= 0 && open < close) return 0;
    const u = parseUsageObject(buf.toString('utf8', at + 8, close + 1));
    if (u === null) return 0;
    s.usage = u;
    // As the general path: keep the tail if it may begin a key split across chunks.
    const q = buf.lastIndexOf(34);
    if (q > n - KEY.length && (q === n - 1 || buf[q + 1] === 117 /* u */)) s.carry = buf.toString('utf8', q, n);
    return TAKEN;
  }

  /** Feeds one body chunk (any size, any split). Returns true when `s.usage` changed. */
  function feedUsage(s: UsageScanner, buf: Buffer): boolean {
    const before = s.usage;
    const n = buf.length;
    if (n === 0) return false;
    const fast = s.capture === null && s.carry === '' ? fastUsage(s, buf, n) : 0;
    if (fast === TAKEN) return true;
    const short = n < KEY.length - 1;
    // The stream's last bytes when this chunk is too short to hold a key prefix on its own.
    let tail = '';
    if (s.capture !== null) {
      continueCapture(s, buf);
    } else if (s.carry !== '') {
      // A `"usage"` key split across chunks: the carry holds its first bytes.
      const joined = s.carry + buf.toString('utf8', 0, Math.min(n, KEY.length - 1));
      const j = joined.indexOf(KEY);
      if (j >= 0) {
        s.capture = s.carry.slice(j);
        continueCapture(s, buf);
      } else if (short) {
        tail = joined;
      }
    }
    s.carry = '';
    // A capture still open after this chunk means the whole chunk is inside that object.
    if (s.capture === null && fast !== NO_KEY) scanCandidates(s, buf);
    if (s.capture === null) {
      // Keep the tail only if it may begin a key: its last quote within the last KEY.length - 1 bytes,
      // followed by nothing or by `u` (a carry such as `":28}` can never complete `"usage"`).
      if (short) {
        if (tail === '') tail = buf.toString('utf8');
        const q = tail.lastIndexOf('"');
        if (q >= 0 && q > tail.length - KEY.length && (q === tail.length - 1 || tail.charCodeAt(q + 1) === 117)) s.carry = tail.slice(q);
      } else {
        const q = buf.lastIndexOf(34);
        if (q >= 0 && q > n - KEY.length && (q === n - 1 || buf[q + 1] === 117)) s.carry = buf.toString('utf8', q, n);
      }
    }
    return s.usage !== before;
  }

  return { create: newUsageScanner, feed: feedUsage, parse: parseUsageObject, probe: probeUsage };
}

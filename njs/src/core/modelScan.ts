/**
 * Finds the top-level "model" string of a JSON request body without parsing the whole body.
 *
 * OCR bodies are megabytes of base64 inside strings. JSON.parse of a 20 MB body costs 70-90 ms and
 * 2x the body in VM memory (njs has no GC), while this scanner jumps over strings with the native
 * Buffer.indexOf and only walks structure byte by byte (20 MB with "model" last: ~6 ms, no copies).
 *
 * Validation: the top level is checked strictly (object, keys, colons, commas, literals, no trailing
 * bytes); nested values are checked for balanced brackets and terminated strings only. Anything the
 * backend would still reject (say, a bad escape deep inside a message) gets the backend's own 400.
 * Like JSON.parse, a duplicated "model" key resolves to the last one.
 *
 * Bodies of 256 KB and more first try scanModelTail (below), which reads the model from the end and
 * does not walk the megabytes before it.
 */
import { Bytes, ScanResult, scanFail } from './bytes';

const QUOTE = 34, BACKSLASH = 92, LBRACE = 123, RBRACE = 125, LBRACKET = 91, RBRACKET = 93;
const COMMA = 44, COLON = 58;
/** Longest model value accepted, in bytes: names are short, and a huge one must not cost a walk. */
const MODEL_MAX = 1024;
const LITERAL = /^(?:-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null)$/;

function isWs(c: number): boolean {
  return c === 32 || c === 10 || c === 13 || c === 9;
}

function skipWs(b: Bytes, i: number): number {
  while (i < b.length && isWs(b[i])) i++;
  return i;
}

/** Index of the quote closing the string that opens at `i`, or -1 if it never closes. */
function stringEnd(b: Bytes, i: number): number {
  let k = i + 1;
  for (;;) {
    const q = b.indexOf(QUOTE, k);
    if (q < 0) return -1;
    let s = q - 1;
    while (s > i && b[s] === BACKSLASH) s--;
    if ((q - 1 - s) % 2 === 0) return q;
    k = q + 1;
  }
}

/** Whether the string literal at [i, q] holds a backslash; a bounded loop, never past q. */
function hasEscape(b: Bytes, i: number, q: number): boolean {
  for (let k = i + 1; k < q; k++) if (b[k] === BACKSLASH) return true;
  return false;
}

/**
 * Decodes the JSON string literal at [i, q] (q = closing quote); null if its escapes are invalid.
 * Only called on short strings (keys that may spell "model", the model value).
 */
function decodeString(b: Bytes, i: number, q: number): string | null {
  if (!hasEscape(b, i, q)) return b.toString('utf8', i + 1, q);
  try {
    return JSON.parse(b.toString('utf8', i, q + 1)) as string;
  } catch (e) {
    return null;
  }
}

/** Index just past the value starting at `i`, or -1 when the value is malformed. */
function skipValue(b: Bytes, i: number): number {
  const c = b[i];
  if (c === QUOTE) {
    const q = stringEnd(b, i);
    return q < 0 ? -1 : q + 1;
  }
  if (c === LBRACE || c === LBRACKET) {
    const closers: number[] = [c === LBRACE ? RBRACE : RBRACKET];
    let k = i + 1;
    while (k < b.length) {
      const d = b[k];
      if (d === QUOTE) {
        const q = stringEnd(b, k);
        if (q < 0) return -1;
        k = q + 1;
        continue;
      }
      if (d === LBRACE) closers.push(RBRACE);
      else if (d === LBRACKET) closers.push(RBRACKET);
      else if (d === RBRACE || d === RBRACKET) {
        if (closers.pop() !== d) return -1;
        if (closers.length === 0) return k + 1;
      }
      k++;
    }
    return -1;
  }
  let k = i;
  while (k < b.length) {
    const d = b[k];
    if (d === COMMA || d === RBRACE || d === RBRACKET || isWs(d)) break;
    k++;
  }
  if (k === i || k - i > 64 || !LITERAL.test(b.toString('utf8', i, k))) return -1;
  return k;
}

export function scanModel(b: Bytes): ScanResult {
  // njs 0.8: indexing an empty Buffer throws "detached buffer".
  if (b.length === 0) return scanFail('invalid_json', 'The request body is empty.');
  let i = skipWs(b, 0);
  // A UTF-8 byte order mark is not JSON, but some Windows clients send one.
  if (b[i] === 0xef && b[i + 1] === 0xbb && b[i + 2] === 0xbf) i = skipWs(b, i + 3);
  if (i >= b.length) return scanFail('invalid_json', 'The request body is empty.');
  if (b[i] !== LBRACE) return scanFail('invalid_json', 'The request body must be a JSON object.');
  i = skipWs(b, i + 1);

  let found: ScanResult | null = null;
  let stream = false;
  let first = true;
  for (;;) {
    if (first && b[i] === RBRACE) {
      i++;
      break;
    }
    first = false;
    if (b[i] !== QUOTE) return scanFail('invalid_json', 'Expected a property name at byte ' + i + '.');
    const kq = stringEnd(b, i);
    if (kq < 0) return scanFail('invalid_json', 'Unterminated string at byte ' + i + '.');
    // "model" spelled with escapes is at most 30 bytes (\u006d...); longer keys cannot be it.
    const isModel = kq - i === 6
      ? b.toString('utf8', i + 1, kq) === 'model'
      : kq - i <= 31 && hasEscape(b, i, kq) && decodeString(b, i, kq) === 'model';
    const isStream = kq - i === 7 && b.toString('utf8', i + 1, kq) === 'stream';
    i = skipWs(b, kq + 1);
    if (b[i] !== COLON) return scanFail('invalid_json', 'Expected ":" at byte ' + i + '.');
    i = skipWs(b, i + 1);
    if (i >= b.length) return scanFail('invalid_json', 'Unexpected end of the body.');
    const vstart = i;
    const vend = skipValue(b, i);
    if (vend < 0) return scanFail('invalid_json', 'Malformed value at byte ' + vstart + '.');
    if (isModel) {
      if (b[vstart] !== QUOTE) {
        found = scanFail('invalid_model', 'The "model" parameter must be a string.');
      } else {
        if (vend - vstart > MODEL_MAX) return scanFail('invalid_model', 'The "model" parameter is too long.');
        const m = decodeString(b, vstart, vend - 1);
        if (m === null) return scanFail('invalid_json', 'Malformed string escape in "model".');
        found = m.length === 0
          ? scanFail('invalid_model', 'The "model" parameter must be a non-empty string.')
          : { ok: true, model: m, start: vstart, end: vend, stream: false };
      }
    } else if (isStream) {
      stream = vend - vstart === 4 && b.toString('utf8', vstart, vend) === 'true';
    }
    i = skipWs(b, vend);
    if (b[i] === COMMA) {
      i = skipWs(b, i + 1);
      continue;
    }
    if (b[i] === RBRACE) {
      i++;
      break;
    }
    return scanFail('invalid_json', 'Expected "," or "}" at byte ' + i + '.');
  }
  if (skipWs(b, i) !== b.length) return scanFail('invalid_json', 'Unexpected data after the JSON object at byte ' + i + '.');
  if (found === null) return scanFail('missing_model', 'You must provide a model parameter.');
  if (found.ok) found.stream = stream;
  return found;
}

/** Bodies at least this big look for the model at their end first (scanModelTail). */
export const TAIL_SCAN_MIN = 256 * 1024;
/** How far from the end the tail scan looks for the "model" key. */
const TAIL_WINDOW = 64 * 1024;
const MODEL_KEY = '"model"';
const MAX_TAIL_CANDIDATES = 4;

/**
 * The model of a large body, read from its end, where the OpenAI SDKs put it (after "messages").
 * Walking a 50 MB body costs one njs Buffer.indexOf pass, ~4 instructions a byte (10.7M of the
 * gateway's 11.9M instructions for a 2 MB OCR request); this looks at the last few hundred bytes.
 *
 * It takes the last `"model"` key within the final 64 KB and accepts it only when the bytes from it
 * to the end are `"model": "<name>"` followed by well-formed members and the closing brace with
 * nothing after it. A key followed by its object's members, that object's `}` and then the end of
 * the body is a member of the outermost object; a nested "model" (a tool's schema, metadata) leaves
 * more closing brackets behind it and is refused. Returns null whenever that proof does not hold
 * (model first, a nested "model" last, a non-string model, anything odd): the caller scans the whole
 * body then, with its precise errors. Two differences from scanModel, both documented in the README:
 * the JSON before the model is not validated here (the backend answers a malformed body with its own
 * 400), and "stream" is seen only after the model (the usage filter marks SSE responses anyway).
 */
export function scanModelTail(b: Bytes): ScanResult | null {
  const low = b.length > TAIL_WINDOW ? b.length - TAIL_WINDOW : 0;
  // Searched in a view of the window: lastIndexOf on the whole body would walk all of it when the
  // model is not near the end.
  const tail = b.subarray(low);
  let at = tail.lastIndexOf(MODEL_KEY);
  for (let k = 0; at >= 0 && k < MAX_TAIL_CANDIDATES; k++) {
    const r = tailMember(b, low + at);
    if (r !== null) return r;
    at = at > 0 ? tail.lastIndexOf(MODEL_KEY, at - 1) : -1;
  }
  return null;
}

/** The proof of scanModelTail for the "model" key at `at`, or null. */
function tailMember(b: Bytes, at: number): ScanResult | null {
  let p = at - 1;
  while (p >= 0 && isWs(b[p])) p--;
  // A member starts after "{" or ","; an escaped quote inside a string has a backslash before it.
  if (p < 0 || (b[p] !== COMMA && b[p] !== LBRACE)) return null;
  let i = skipWs(b, at + MODEL_KEY.length);
  if (b[i] !== COLON) return null;
  i = skipWs(b, i + 1);
  if (b[i] !== QUOTE) return null;
  const vstart = i;
  const q = stringEnd(b, i);
  if (q < 0 || q + 1 - vstart > MODEL_MAX) return null;
  const model = decodeString(b, vstart, q);
  if (model === null || model.length === 0) return null;
  let stream = false;
  i = skipWs(b, q + 1);
  for (;;) {
    if (b[i] === RBRACE) return skipWs(b, i + 1) === b.length ? { ok: true, model: model, start: vstart, end: q + 1, stream: stream } : null;
    if (b[i] !== COMMA) return null;
    i = skipWs(b, i + 1);
    if (b[i] !== QUOTE) return null;
    const kq = stringEnd(b, i);
    if (kq < 0) return null;
    const isStream = kq - i === 7 && b.toString('utf8', i + 1, kq) === 'stream';
    i = skipWs(b, kq + 1);
    if (b[i] !== COLON) return null;
    i = skipWs(b, i + 1);
    const vs = i;
    const ve = i < b.length ? skipValue(b, i) : -1;
    if (ve < 0) return null;
    if (isStream) stream = ve - vs === 4 && b.toString('utf8', vs, ve) === 'true';
    i = skipWs(b, ve);
  }
}

/**
 * Bodies up to this size are parsed whole: there the native JSON.parse is faster than the scanner
 * (inside njs 0.8.9: 2 us vs 15 us at 1 KB) and validates strictly; above it the scanner wins
 * (20 MB: ~75 ms and 2x the body in memory vs one pass and no copy).
 */
export const PARSE_WHOLE_MAX = 8192;

/**
 * The model of a JSON body, by whichever of JSON.parse or the scanner is cheaper for its size.
 * From the JSON.parse path start/end are -1: call scanModel when the value's offsets are needed.
 */
export function findModel(b: Bytes): ScanResult {
  if (b.length >= TAIL_SCAN_MIN) {
    const t = scanModelTail(b);
    if (t !== null) return t;
  }
  if (b.length === 0 || b.length > PARSE_WHOLE_MAX) return scanModel(b);
  let text = b.toString('utf8', 0, b.length);
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return scanFail('invalid_json', 'We could not parse the JSON body of your request: ' + String((e as Error).message) + '.');
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return scanFail('invalid_json', 'The request body must be a JSON object.');
  const o = v as { model?: unknown; stream?: unknown };
  if (!Object.prototype.hasOwnProperty.call(o, 'model')) return scanFail('missing_model', 'You must provide a model parameter.');
  if (typeof o.model !== 'string') return scanFail('invalid_model', 'The "model" parameter must be a string.');
  if (o.model.length === 0) return scanFail('invalid_model', 'The "model" parameter must be a non-empty string.');
  if (o.model.length > MODEL_MAX) return scanFail('invalid_model', 'The "model" parameter is too long.');
  return { ok: true, model: o.model, start: -1, end: -1, stream: o.stream === true };
}

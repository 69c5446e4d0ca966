/**
 * The byte scanner behind core/modelScan.ts: the walk over a JSON body that finds the top-level
 * "model" (and "stream") and refuses what a parser could read differently. modelScan.ts is the
 * contract and the entry point (findModel, scanModel); this module holds only what bodies over
 * PARSE_WHOLE_MAX, duplicates and escapes run, so a small chat request never instantiates it: it
 * exports functions only and can be loaded as a cold module (njs/handlers.json `cold`).
 */
import { Bytes, MODEL_MAX, ScanResult, scanFail, validUtf8 } from './bytes';

const QUOTE = 34, BACKSLASH = 92, LBRACE = 123, RBRACE = 125, LBRACKET = 91, RBRACKET = 93;
const COMMA = 44, COLON = 58;
/** A key spelling "stream" with every letter escaped (\u0073...) is 36 bytes; longer keys are neither. */
const ESCAPED_KEY_MAX = 36;
const LITERAL = /^(?:-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null)$/;
const DUPLICATE = 'The request body has more than one "model" member (keys are compared after decoding escapes). Send exactly one.';

function isWs(c: number): boolean {
  return c === 32 || c === 10 || c === 13 || c === 9;
}

function skipWs(b: Bytes, i: number): number {
  while (i < b.length && isWs(b[i])) i++;
  return i;
}

/** Whether byte `c` can be part of a JSON number or of true/false/null. */
function isLiteralByte(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 97 && c <= 122) || c === 45 || c === 43 || c === 46 || c === 69;
}

/**
 * The typed-array indexOf, called on the body's Buffer: QuickJS runs it as memchr, while its
 * Buffer.prototype.indexOf (like both indexOf's on the njs engine) is a byte-at-a-time loop. This one
 * search is what a long string (a base64 image) costs, so the cheapest native search is used.
 * Looked up on first use: module-level code runs again in every request VM on the njs engine.
 */
let byteIndexOf: ((this: Uint8Array, value: number, from?: number) => number) | null = null;

/** Index of the quote closing the string that opens at `i`, or -1 if it never closes. */
function stringEnd(b: Bytes, i: number): number {
  if (byteIndexOf === null) byteIndexOf = Uint8Array.prototype.indexOf;
  let k = i + 1;
  for (;;) {
    const q = byteIndexOf.call(b as unknown as Uint8Array, QUOTE, k);
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
 * Decodes the JSON string literal at [i, q] (q = closing quote); null if its escapes are invalid or
 * its bytes are not UTF-8. Only called on short strings (keys that may spell "model", the model).
 */
function decodeString(b: Bytes, i: number, q: number): string | null {
  if (!validUtf8(b, i + 1, q)) return null;
  if (!hasEscape(b, i, q)) return b.toString('utf8', i + 1, q);
  const lit = b.toString('utf8', i, q + 1);
  if (unpairedEscape(lit)) return null;
  try {
    return JSON.parse(lit) as string;
  } catch (e) {
    return null;
  }
}

/**
 * Whether a JSON string literal (quotes included) spells a surrogate with a \u escape that is not
 * half of an escaped pair: njs decodes it as U+FFFD, QuickJS and Python as the lone surrogate, and
 * no UTF-8 log line holds one. Refused on every engine alike.
 */
function unpairedEscape(lit: string): boolean {
  let high = false;
  for (let k = 1; k < lit.length - 1; k++) {
    if (lit.charCodeAt(k) !== BACKSLASH) {
      if (high) return true;
      continue;
    }
    if (lit.charCodeAt(k + 1) !== 117) {
      if (high) return true;
      k++; // \" \\ \n ...: one escaped character
      continue;
    }
    const u = parseInt(lit.slice(k + 2, k + 6), 16);
    k += 5;
    if (u >= 0xdc00 && u <= 0xdfff) {
      if (!high) return true;
      high = false;
    } else {
      if (high) return true;
      high = u >= 0xd800 && u <= 0xdbff;
    }
  }
  return high;
}

/** What the key at [i, kq] decodes to, as far as the gateway cares: 'model', 'stream' or ''. */
function keyName(b: Bytes, i: number, kq: number): string {
  const n = kq - i - 1;
  if (n === 5 || n === 6) {
    const k = b.toString('utf8', i + 1, kq);
    if (k === 'model' || k === 'stream') return k;
  }
  if (n > ESCAPED_KEY_MAX || !hasEscape(b, i, kq)) return '';
  const d = decodeString(b, i, kq);
  return d === 'model' || d === 'stream' ? d : '';
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
  // Numbers have no length limit in JSON: a 70-digit temperature is valid and JSON.parse takes it.
  let k = i;
  while (k < b.length && isLiteralByte(b[k])) k++;
  if (k === i || !LITERAL.test(b.toString('utf8', i, k))) return -1;
  return k;
}

export function scanModel(b: Bytes): ScanResult {
  // njs 0.8: indexing an empty Buffer throws "detached buffer".
  if (b.length === 0) return scanFail('invalid_json', 'The request body is empty.');
  let i = skipWs(b, 0);
  // A UTF-8 byte order mark is not JSON, but Python's json.loads(bytes) (FastAPI, vLLM) accepts it.
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
    const key = keyName(b, i, kq);
    i = skipWs(b, kq + 1);
    if (b[i] !== COLON) return scanFail('invalid_json', 'Expected ":" at byte ' + i + '.');
    i = skipWs(b, i + 1);
    if (i >= b.length) return scanFail('invalid_json', 'Unexpected end of the body.');
    const vstart = i;
    const vend = skipValue(b, i);
    if (vend < 0) return scanFail('invalid_json', 'Malformed value at byte ' + vstart + '.');
    if (key === 'model') {
      if (found !== null) return scanFail('invalid_model', DUPLICATE);
      if (b[vstart] !== QUOTE) {
        found = scanFail('invalid_model', 'The "model" parameter must be a string.');
      } else {
        // The limit is on the decoded length, as on the JSON.parse path; 6 bytes per escaped unit
        // bounds what is decoded at all.
        if (vend - vstart > 6 * MODEL_MAX + 2) return scanFail('invalid_model', 'The "model" parameter is too long.');
        const m = decodeString(b, vstart, vend - 1);
        if (m === null) return scanFail('invalid_json', 'The "model" parameter is not a valid JSON string of UTF-8 text.');
        if (m.length > MODEL_MAX) return scanFail('invalid_model', 'The "model" parameter is too long.');
        found = m.length === 0
          ? scanFail('invalid_model', 'The "model" parameter must be a non-empty string.')
          : { ok: true, model: m, start: vstart, end: vend, stream: false };
      }
    } else if (key === 'stream') {
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

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
 */
import { Bytes, ScanResult, scanFail } from './bytes';

const QUOTE = 34, BACKSLASH = 92, LBRACE = 123, RBRACE = 125, LBRACKET = 91, RBRACKET = 93;
const COMMA = 44, COLON = 58;
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

/** Decodes the JSON string literal at [i, q] (q = closing quote); null if its escapes are invalid. */
function decodeString(b: Bytes, i: number, q: number): string | null {
  const bs = b.indexOf(BACKSLASH, i + 1);
  if (bs < 0 || bs > q) return b.toString('utf8', i + 1, q);
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
    const isModel = kq - i === 6
      ? b.toString('utf8', i + 1, kq) === 'model'
      : b.indexOf(BACKSLASH, i + 1) > -1 && b.indexOf(BACKSLASH, i + 1) < kq && decodeString(b, i, kq) === 'model';
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

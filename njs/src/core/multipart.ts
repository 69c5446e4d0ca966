/**
 * Which reader a body needs (JSON or multipart/form-data) and the "model" form field of a
 * multipart body (/v1/audio/transcriptions and translations). File parts are jumped over with a
 * native search for the boundary line (indexOfAscii), never copied.
 *
 * The rule is the JSON one (docs/model.md): read the field exactly as the backend's form parser
 * (Starlette over python-multipart, what vLLM uses) reads it, or refuse with 400 where parsers could
 * read it differently: only the Content-Disposition header names a part; parameters are tokens or
 * quoted-strings, names case-insensitive, whitespace around "=" allowed (Python's email header
 * parser strips it); two "model" parts, name=model in another header of a part, two Content-Disposition headers, a duplicated parameter, an
 * RFC 2231 `name*`, folded header lines, a preamble and a model part with a transfer encoding are
 * refused rather than guessed at.
 */
import { Bytes, ScanResult, scanFail, validUtf8 } from './bytes';

export type BodyKind = { kind: 'json' } | { kind: 'multipart'; boundary: string } | { kind: 'invalid'; detail: string };

const TCHAR = /^[!#$%&'*+.^_`|~0-9A-Za-z-]$/;
/** RFC 2046 boundary: 1 to 70 bchars, not ending in a space. */
const BOUNDARY = /^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/;
const MODEL_MAX = 1024;
/** Starlette (vLLM) refuses forms of more than 1000 fields and 1000 files; this bounds the walk. */
const MAX_PARTS = 2000;
/** name=model (any quoting) in a header that is not Content-Disposition. */
const DECOY = /(^|[;\s])name\s*\*?=\s*"?model("|;|\s|$)/i;

function isOws(c: string): boolean {
  return c === ' ' || c === '\t';
}

/**
 * The `; name=value` parameters of a header value from index `i` on, names lower-cased, quoted
 * values unescaped; null when the syntax is off or a name repeats (which one would a parser keep?).
 */
export function parseParams(s: string, i: number): { [name: string]: string } | null {
  const out: { [name: string]: string } = Object.create(null);
  for (;;) {
    while (i < s.length && isOws(s[i])) i++;
    if (i >= s.length) return out;
    if (s[i] !== ';') return null;
    i++;
    while (i < s.length && isOws(s[i])) i++;
    if (i >= s.length) return out;
    let n = i;
    while (n < s.length && TCHAR.test(s[n])) n++;
    if (n === i) return null;
    const name = s.slice(i, n).toLowerCase();
    i = n;
    while (i < s.length && isOws(s[i])) i++;
    if (s[i] !== '=') return null;
    i++;
    while (i < s.length && isOws(s[i])) i++;
    let value = '';
    if (s[i] === '"') {
      i++;
      for (;;) {
        if (i >= s.length) return null;
        const c = s[i];
        if (c === '"') break;
        if (c === '\\') {
          i++;
          if (i >= s.length) return null;
        }
        value += s[i];
        i++;
      }
      i++;
    } else {
      const v = i;
      while (i < s.length && TCHAR.test(s[i])) i++;
      if (i === v) return null;
      value = s.slice(v, i);
    }
    if (Object.prototype.hasOwnProperty.call(out, name)) return null;
    out[name] = value;
  }
}

/**
 * JSON unless the Content-Type says form: multipart/form-data must be exactly that type followed
 * by parameters with one valid boundary; anything else that mentions multipart or form-data, and
 * urlencoded forms (which the backend's form parser would read while the gateway reads JSON), is
 * invalid. Other types are read as JSON, as before: the backend decides whether it takes them.
 */
export function bodyKind(contentType: string | undefined): BodyKind {
  if (contentType === undefined) return { kind: 'json' };
  const semi = contentType.indexOf(';');
  const type = (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  if (type === 'application/x-www-form-urlencoded') {
    return { kind: 'invalid', detail: 'The gateway does not read application/x-www-form-urlencoded bodies. Send JSON, or multipart/form-data for audio.' };
  }
  if (type.indexOf('multipart') < 0 && type.indexOf('form-data') < 0) return { kind: 'json' };
  const bad: BodyKind = { kind: 'invalid', detail: 'The Content-Type must be exactly "multipart/form-data; boundary=<boundary>" (RFC 7578).' };
  if (type !== 'multipart/form-data' || semi < 0) return bad;
  const params = parseParams(contentType, semi);
  if (params === null || params['boundary'] === undefined || !BOUNDARY.test(params['boundary'])) return bad;
  return { kind: 'multipart', boundary: params['boundary'] };
}

/**
 * The native byte search, looked up on first use: QuickJS runs it as memchr; njs searches one byte
 * several times faster than a string needle (which it compares at every offset).
 */
let byteIndexOf: ((this: Uint8Array, value: number, from?: number) => number) | null = null;

/**
 * Index of the ASCII string `needle` in `b` at or after `from`, or -1: a native search for its
 * first byte, then the rest compared where that byte is. An audio file part is megabytes of
 * binary data the boundary line has to be found past.
 */
function indexOfAscii(b: Bytes, needle: string, from: number): number {
  if (byteIndexOf === null) byteIndexOf = Uint8Array.prototype.indexOf;
  const first = needle.charCodeAt(0);
  const n = needle.length;
  const last = b.length - n;
  for (let i = from; i <= last; i++) {
    i = byteIndexOf.call(b as unknown as Uint8Array, first, i);
    if (i < 0 || i > last) return -1;
    let k = 1;
    while (k < n && b[i + k] === needle.charCodeAt(k)) k++;
    if (k === n) return i;
  }
  return -1;
}

/** The form field name of a part's headers, or an error detail (as { error }). */
function partName(headers: string): { name: string } | { error: string } {
  const lines = headers.length > 0 ? headers.split('\r\n') : [];
  let cd: string | null = null;
  let cte = '';
  for (let k = 0; k < lines.length; k++) {
    const line = lines[k];
    const colon = line.indexOf(':');
    if (colon <= 0 || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(line.slice(0, colon))) return { error: 'Malformed multipart part header (folded lines are not accepted).' };
    const h = line.slice(0, colon).toLowerCase();
    if (h === 'content-disposition') {
      if (cd !== null) return { error: 'A multipart part has two Content-Disposition headers.' };
      cd = line.slice(colon + 1);
    } else if (h === 'content-transfer-encoding') {
      cte = line.slice(colon + 1).trim().toLowerCase();
    } else if (DECOY.test(line.slice(colon + 1))) {
      // RFC 7578 ignores it, but a reader that greps the part headers for name="model" would not.
      return { error: 'A multipart part header other than Content-Disposition names "model".' };
    }
  }
  if (cd === null) return { error: 'A multipart part has no Content-Disposition header.' };
  const m = /^[ \t]*form-data[ \t]*(?=;|$)/i.exec(cd);
  const params = m ? parseParams(cd, m[0].length) : null;
  if (params === null || params['name'] === undefined) return { error: 'A multipart part needs "Content-Disposition: form-data; name=...".' };
  if (params['name*'] !== undefined) return { error: 'RFC 2231 "name*" parameters are not accepted in multipart parts.' };
  if (params['name'] === 'model' && cte !== '' && cte !== '7bit' && cte !== '8bit' && cte !== 'binary') {
    return { error: 'The "model" part must not use a Content-Transfer-Encoding.' };
  }
  return { name: params['name'] };
}

export function scanMultipartModel(b: Bytes, boundary: string): ScanResult {
  const delim = '--' + boundary;
  // No preamble: the body starts with the first delimiter, as the form parsers expect.
  if (b.length < delim.length || b.toString('utf8', 0, delim.length) !== delim) {
    return scanFail('invalid_multipart', 'The body must start with the multipart boundary ("--" + boundary).');
  }
  let pos = 0;
  let found: ScanResult | null = null;
  for (let n = 0; ; n++) {
    if (n > MAX_PARTS) return scanFail('invalid_multipart', 'The multipart body has more than ' + MAX_PARTS + ' parts.');
    const after = pos + delim.length;
    // "--" after a delimiter closes the body.
    if (b[after] === 45 && b[after + 1] === 45) break;
    if (b[after] !== 13 || b[after + 1] !== 10) return scanFail('invalid_multipart', 'Malformed multipart delimiter line.');
    const headersEnd = indexOfAscii(b, '\r\n\r\n', after);
    if (headersEnd < 0 || headersEnd - after > 8192) return scanFail('invalid_multipart', 'Malformed multipart part headers.');
    const headers = headersEnd > after ? b.toString('utf8', after + 2, headersEnd) : '';
    const valueStart = headersEnd + 4;
    const valueEnd = indexOfAscii(b, '\r\n' + delim, valueStart);
    if (valueEnd < 0) return scanFail('invalid_multipart', 'The multipart body ends without a closing boundary.');
    const part = partName(headers);
    if ('error' in part) return scanFail('invalid_multipart', part.error);
    if (part.name === 'model') {
      if (found !== null) return scanFail('invalid_model', 'The multipart body has more than one "model" part. Send exactly one.');
      if (valueEnd - valueStart > 4 * MODEL_MAX) return scanFail('invalid_model', 'The "model" field is too long.');
      if (!validUtf8(b, valueStart, valueEnd)) return scanFail('invalid_model', 'The "model" field is not valid UTF-8.');
      // Not trimmed: the backend reads the bytes as they are.
      const m = b.toString('utf8', valueStart, valueEnd);
      found = m.length === 0
        ? scanFail('invalid_model', 'The "model" parameter must be a non-empty string.')
        : m.length > MODEL_MAX
          ? scanFail('invalid_model', 'The "model" field is too long.')
          : { ok: true, model: m, start: valueStart, end: valueEnd, stream: false };
    }
    pos = valueEnd + 2;
  }
  return found !== null ? found : scanFail('missing_model', 'You must provide a model parameter.');
}

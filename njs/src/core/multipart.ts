/**
 * Finds the "model" form field of a multipart/form-data body (/v1/audio/transcriptions and
 * translations). File parts are jumped over with Buffer.indexOf on the boundary, never copied.
 */
import { Bytes, ScanResult, scanFail } from './bytes';

/** The boundary parameter of a multipart/form-data Content-Type, or null if it is not one. */
export function multipartBoundary(contentType: string | undefined): string | null {
  if (!contentType || !/^\s*multipart\/form-data\s*;/i.test(contentType)) return null;
  const m = /;\s*boundary=(?:"([^"]{1,70})"|([^\s;,"]{1,70}))/i.exec(contentType);
  if (!m) return null;
  return m[1] !== undefined ? m[1] : m[2];
}

const NAME = /;\s*name="([^"]*)"/i;

export function scanMultipartModel(b: Bytes, boundary: string): ScanResult {
  const delim = '--' + boundary;
  let pos = b.indexOf(delim, 0);
  if (pos < 0) return scanFail('invalid_multipart', 'The body does not contain the multipart boundary.');
  let found: ScanResult | null = null;
  for (;;) {
    const after = pos + delim.length;
    // "--" after a delimiter closes the body.
    if (b[after] === 45 && b[after + 1] === 45) break;
    if (b[after] !== 13 || b[after + 1] !== 10) return scanFail('invalid_multipart', 'Malformed multipart delimiter line.');
    const headersEnd = b.indexOf('\r\n\r\n', after);
    if (headersEnd < 0 || headersEnd - after > 8192) return scanFail('invalid_multipart', 'Malformed multipart part headers.');
    const headers = b.toString('utf8', after + 2, headersEnd);
    const valueStart = headersEnd + 4;
    const valueEnd = b.indexOf('\r\n' + delim, valueStart);
    if (valueEnd < 0) return scanFail('invalid_multipart', 'The multipart body ends without a closing boundary.');
    const name = NAME.exec(headers);
    if (name && name[1] === 'model') {
      if (valueEnd - valueStart > 1024) return scanFail('invalid_model', 'The "model" field is too long.');
      const m = b.toString('utf8', valueStart, valueEnd).trim();
      found = m.length === 0
        ? scanFail('invalid_model', 'The "model" parameter must be a non-empty string.')
        : { ok: true, model: m, start: valueStart, end: valueEnd, stream: false };
    }
    pos = valueEnd + 2;
  }
  return found !== null ? found : scanFail('missing_model', 'You must provide a model parameter.');
}

/**
 * The byte-array surface shared by njs's Buffer and Node's Buffer, so the scanners run unchanged
 * in nginx and in the unit tests.
 */
export interface Bytes {
  readonly length: number;
  readonly [index: number]: number;
  indexOf(value: number | string, byteOffset?: number): number;
  lastIndexOf(value: number | string, byteOffset?: number): number;
  subarray(start?: number, end?: number): Bytes;
  toString(encoding?: string, start?: number, end?: number): string;
}

/**
 * What a body scanner found: the model string, the byte range of its value (for rewriting), and
 * whether the top level asked for a stream ("stream": true).
 */
export type ScanResult =
  | { ok: true; model: string; start: number; end: number; stream: boolean }
  | { ok: false; error: 'invalid_json' | 'missing_model' | 'invalid_model' | 'invalid_multipart'; detail: string };

export function scanFail(error: 'invalid_json' | 'missing_model' | 'invalid_model' | 'invalid_multipart', detail: string): ScanResult {
  return { ok: false, error: error, detail: detail };
}

/**
 * Whether b[s, e) is well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF), as
 * Python's strict decoder wants it. Only called on short ranges (a model value, a small body).
 */
export function validUtf8(b: Bytes, s: number, e: number): boolean {
  let i = s;
  while (i < e) {
    const c = b[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    let n = 0, min = 0;
    if (c >= 0xc2 && c <= 0xdf) { n = 1; min = 0x80; }
    else if (c >= 0xe0 && c <= 0xef) { n = 2; min = 0x800; }
    else if (c >= 0xf0 && c <= 0xf4) { n = 3; min = 0x10000; }
    else return false;
    if (i + n >= e) return false;
    let cp = c & (n === 1 ? 0x1f : n === 2 ? 0x0f : 0x07);
    for (let k = 1; k <= n; k++) {
      const d = b[i + k];
      if ((d & 0xc0) !== 0x80) return false;
      cp = cp * 64 + (d & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += n + 1;
  }
  return true;
}


/** Longest model accepted, in UTF-16 units as JSON.parse counts them: names are short. */
export const MODEL_MAX = 1024;

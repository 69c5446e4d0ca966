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

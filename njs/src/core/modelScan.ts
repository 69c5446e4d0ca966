/**
 * The one rule for "model" in a JSON request body, on every size path: the gateway reads exactly
 * the value a strict JSON parser reads (escapes decoded in keys and values, any JSON number or
 * literal accepted), and refuses with 400 whatever a parser could read differently: two top-level
 * members whose keys decode to "model" (parsers disagree on which wins: Python and JSON.parse take
 * the last, simdjson-style readers the first, serde refuses), and a model key or value that is not
 * valid UTF-8. docs/model.md is the contract; test/unit/modelDifferential.test.ts checks it.
 *
 * Why every byte is looked at: a second "model" member can hide anywhere in the body, and only a
 * walk that knows where strings start and end can tell a key from text inside a string. The walk
 * jumps over strings with the native Buffer.indexOf and steps through structure in JS; reading the
 * model from the body's end alone (an earlier design) let a duplicate before it through.
 *
 * Validation: the top level is checked strictly (object, keys, colons, commas, literals, no trailing
 * bytes); nested values are checked for balanced brackets and terminated strings only. Anything the
 * backend would still reject (say, a bad escape deep inside a message) gets the backend's own 400.
 */
import { Bytes, MODEL_MAX, ScanResult, scanFail } from './bytes';
import { scanModel } from './modelScanner';

export { scanModel };

const BACKSLASH = 92;
/** Anything but printable ASCII (a model with a control character is looked at closer too). */
const NON_ASCII = /[^ -~]/;
const LONE_SURROGATE = 'The "model" parameter is not valid Unicode text (it holds a lone surrogate, e.g. an unpaired \\ud800 escape).';

/**
 * Bodies up to this size are parsed whole: there the native JSON.parse is faster than the scanner
 * (inside njs 0.8.9: 2 us vs 15 us at 1 KB) and validates strictly; above it the scanner wins
 * (20 MB: ~75 ms and 2x the body in memory vs one pass and no copy).
 */
export const PARSE_WHOLE_MAX = 8192;

/**
 * The model of a JSON body, by whichever of JSON.parse or the scanner is cheaper for its size, with
 * the same answer either way. JSON.parse keeps the last of duplicate keys without saying so, so a
 * parsed body whose text could hold a second "model" key (a second `"model"`, or any `\u006` escape,
 * which every escaped spelling of m, o, d, e, l starts with) is handed to the scanner to decide.
 * From the JSON.parse path start/end are -1: call scanModel when the value's offsets are needed.
 *
 * `text`, for a body of at most PARSE_WHOLE_MAX bytes, is the same body as text the way njs's
 * r.requestText gives it (a fraction of the cost of b.toString() in njs 0.8, which re-encodes every
 * byte): valid UTF-8 decoded, and invalid UTF-8 kept as bytes, which JSON.parse reads as U+FFFD just
 * as it reads toString's replacement characters. Without it the body is decoded here.
 */
export function findModel(b: Bytes, text?: string): ScanResult {
  if (b.length === 0 || b.length > PARSE_WHOLE_MAX) return scanModel(b);
  let t = text !== undefined ? text : b.toString('utf8', 0, b.length);
  if (b[0] === 0xef && t.charCodeAt(0) === 0xfeff) t = t.slice(1);
  let v: unknown;
  try {
    v = JSON.parse(t);
  } catch (e) {
    const why = String((e as Error).message);
    // njs's JSON.parse stops at 32 levels of nesting (a deep tool or json_schema), which Python and
    // larger bodies take: the scanner reads such a body as it reads one over PARSE_WHOLE_MAX.
    if (/Nested too deep/.test(why)) return scanModel(b);
    return scanFail('invalid_json', 'We could not parse the JSON body of your request: ' + why + '.');
  }
  if (v === null || typeof v !== 'object') return scanFail('invalid_json', 'The request body must be a JSON object.');
  // The backslash is a byte search (a number needle is njs's fast path), the token a text search.
  // Whether `"model"` occurs more than once in the body's text (the same count as in its bytes: the
  // token is ASCII, and UTF-8 never repeats ASCII inside a multi-byte character). Searched in the
  // text: in njs 0.8 a string needle on a Buffer is converted on every call, and a Buffer search
  // from an offset takes a slow path. Written out here: a call less on every small body.
  const k = t.indexOf('"model"');
  if ((k >= 0 && t.indexOf('"model"', k + 7) >= 0) || (b.indexOf(BACKSLASH) >= 0 && b.indexOf('\\u006') >= 0)) return scanModel(b);
  const o = v as { model?: unknown; stream?: unknown };
  const m = o.model;
  // A parsed object's prototype is Object.prototype, which has no "model": undefined means absent.
  if (m === undefined) {
    // An array has no "model" either: told apart only here, off the common path.
    if (Array.isArray(v)) return scanFail('invalid_json', 'The request body must be a JSON object.');
    return scanFail('missing_model', 'You must provide a model parameter.');
  }
  if (typeof m !== 'string') return scanFail('invalid_model', 'The "model" parameter must be a string.');
  // Invalid UTF-8 reads as U+FFFD; the scanner checks the model's own bytes, as on larger bodies
  // (invalid UTF-8 elsewhere is the backend's to refuse, on every path).
  if (m.indexOf('\ufffd') >= 0) return scanModel(b);
  // njs reads invalid UTF-8 and unpaired \u escapes as U+FFFD (above). QuickJS keeps them as
  // surrogates (and reads a CESU-8 pair as a valid one); only an engine with isWellFormed can hold a
  // lone surrogate, so only there a non-ASCII model in a body with multi-byte text (t shorter than b)
  // is read from its bytes, and a lone surrogate (an escape) refused: no UTF-8 log line holds one.
  const wellFormed = (m as unknown as { isWellFormed?: () => boolean }).isWellFormed;
  if (wellFormed !== undefined) {
    if (t.length !== b.length && NON_ASCII.test(m)) return scanModel(b);
    if (!wellFormed.call(m)) return scanFail('invalid_model', LONE_SURROGATE);
  }
  if (m.length === 0) return scanFail('invalid_model', 'The "model" parameter must be a non-empty string.');
  if (m.length > MODEL_MAX) return scanFail('invalid_model', 'The "model" parameter is too long.');
  return { ok: true, model: m, start: -1, end: -1, stream: o.stream === true };
}

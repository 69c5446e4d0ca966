/**
 * The usage ledger's layout in a `type=number` shared dict (zone gw_usage): one counter per
 * UTC day, field, key id and model, so a day rolls over by itself and old days expire with the
 * zone's `timeout=` (nginx/logging-http.conf). Keys look like
 *   2025-11-25|prompt_tokens|team-a|Qwen/Qwen2.5-1.5B-Instruct
 * day and field have fixed shapes and the key id never holds `|`, so the model (which may) is
 * simply the rest. Counters only ever go up through atomic `incr` (no get→modify→set).
 */

export type LedgerField = 'requests' | 'errors' | 'prompt_tokens' | 'completion_tokens' | 'total_tokens';

export const LEDGER_FIELDS: LedgerField[] = ['requests', 'errors', 'prompt_tokens', 'completion_tokens', 'total_tokens'];

/** The key id recorded when auth is off (no key). */
export const NO_KEY = '-';

export interface LedgerRow {
  day: string;
  key_id: string;
  model: string;
  requests: number;
  errors: number;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface LedgerFilter {
  day?: string;
  key_id?: string;
  model?: string;
}

/**
 * `YYYY-MM-DD` (UTC) of a time in ms since 1970. Civil date from the day count in integer
 * arithmetic (H. Hinnant's days_from_civil inverse): njs 0.8 pays far more for a Date object and
 * its toISOString than for these few divisions, and this runs in every request's log phase.
 */
export function utcDay(ms: number): string {
  const z = ((ms / 86400000) | 0) + 719468;
  const era = (z / 146097) | 0;
  const doe = z - era * 146097;
  const yoe = ((doe - ((doe / 1460) | 0) + ((doe / 36524) | 0) - ((doe / 146096) | 0)) / 365) | 0;
  const doy = doe - (365 * yoe + ((yoe / 4) | 0) - ((yoe / 100) | 0));
  const mp = ((5 * doy + 2) / 153) | 0;
  const d = doy - (((153 * mp + 2) / 5) | 0) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  const y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  return y + (m < 10 ? '-0' : '-') + m + (d < 10 ? '-0' : '-') + d;
}

const DAY_RE = /^\d{4}-\d{2}-\d{2}$/;

export function isDay(s: string): boolean {
  return DAY_RE.test(s);
}

export function ledgerKey(day: string, field: LedgerField, keyId: string, model: string): string {
  return day + '|' + field + ledgerKeyTail(keyId, model);
}

/** The part of a ledger key after the field: one request's keys share it (built once, njs 0.8 string `+` is slow). */
export function ledgerKeyTail(keyId: string, model: string): string {
  const k = keyId === '' ? NO_KEY : keyId.indexOf('|') < 0 ? keyId : keyId.split('|').join('_');
  return '|' + k + '|' + model;
}

/** The one operation the ledger needs from its zone (a fake in unit tests). */
export interface LedgerCounters {
  incr(key: string, delta: number, init: number): number;
}

/**
 * A count the body filter wrote ('' + a non-negative integer): unary plus reads those exactly as
 * parseInt does, for a fraction of its cost in njs 0.8; anything else takes parseInt.
 */
function count(s: string): number {
  const n = +s;
  return n >= 0 && n % 1 === 0 && n < 1e21 ? n : parseInt(s, 10);
}

/**
 * Adds what one finished request adds to `d` (atomic `incr`s): nothing when it never named a
 * routable model. The token counts are the decimal strings the body filter leaves in js_vars
 * ("" = not seen; total defaults to prompt + completion). Inline, without an intermediate object
 * or callback: this runs in every request's log phase (njs 0.8 pays for each).
 */
export function addToLedger(d: LedgerCounters, day: string, keyId: string, model: string, status: number,
  prompt: string, completion: string, total: string): void {
  if (model === '') return;
  const head = day + '|';
  const tail = ledgerKeyTail(keyId, model);
  d.incr(head + 'requests' + tail, 1, 0);
  if (status >= 400) d.incr(head + 'errors' + tail, 1, 0);
  if (prompt === '' && completion === '' && total === '') return;
  const p = prompt !== '' ? count(prompt) : 0;
  const c = completion !== '' ? count(completion) : 0;
  const t = total !== '' ? count(total) : p + c;
  if (!(p >= 0 && c >= 0 && t >= 0)) return;
  if (p > 0) d.incr(head + 'prompt_tokens' + tail, p, 0);
  if (c > 0) d.incr(head + 'completion_tokens' + tail, c, 0);
  if (t > 0) d.incr(head + 'total_tokens' + tail, t, 0);
}

interface ParsedKey {
  day: string;
  field: LedgerField;
  keyId: string;
  model: string;
}

export function parseLedgerKey(key: string): ParsedKey | null {
  const a = key.indexOf('|');
  const b = a >= 0 ? key.indexOf('|', a + 1) : -1;
  const c = b >= 0 ? key.indexOf('|', b + 1) : -1;
  if (c < 0) return null;
  const day = key.slice(0, a);
  const field = key.slice(a + 1, b) as LedgerField;
  if (!isDay(day) || LEDGER_FIELDS.indexOf(field) < 0) return null;
  return { day: day, field: field, keyId: key.slice(b + 1, c), model: key.slice(c + 1) };
}

/** Folds the dict's [key, value] pairs into one row per day, key id and model, sorted. */
export function ledgerRows(items: [string, number][], f: LedgerFilter): LedgerRow[] {
  const byId: { [id: string]: LedgerRow } = Object.create(null);
  const rows: LedgerRow[] = [];
  for (let i = 0; i < items.length; i++) {
    const p = parseLedgerKey(items[i][0]);
    if (p === null) continue;
    if (f.day !== undefined && f.day !== p.day) continue;
    if (f.key_id !== undefined && f.key_id !== p.keyId) continue;
    if (f.model !== undefined && f.model !== p.model) continue;
    const id = p.day + '|' + p.keyId + '|' + p.model;
    let row = byId[id];
    if (row === undefined) {
      row = { day: p.day, key_id: p.keyId, model: p.model, requests: 0, errors: 0, prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
      byId[id] = row;
      rows.push(row);
    }
    row[p.field] += items[i][1];
  }
  rows.sort(function (x, y) {
    if (x.day !== y.day) return x.day < y.day ? 1 : -1; // newest day first
    if (x.key_id !== y.key_id) return x.key_id < y.key_id ? -1 : 1;
    return x.model < y.model ? -1 : x.model > y.model ? 1 : 0;
  });
  return rows;
}

/** Keys of one day (for a reset of that day). */
export function keysOfDay(keys: string[], day: string): string[] {
  const out: string[] = [];
  const prefix = day + '|';
  for (let i = 0; i < keys.length; i++) if (keys[i].indexOf(prefix) === 0) out.push(keys[i]);
  return out;
}

/**
 * The usage ledger's layout in a `type=number` shared dict (zone gw_usage): one counter per
 * UTC day, field, key id and model, so a day rolls over by itself and old days expire with the
 * zone's `timeout=` (nginx/logging-http.conf). Keys look like
 *   20417|p|team-a|Qwen/Qwen2.5-1.5B-Instruct
 * the day as days since 1970-01-01 (UTC) and the field as one letter: r requests, e errors,
 * p prompt tokens, c completion tokens, x total tokens beyond prompt + completion (written only
 * when a response's total differs from that sum), so the usual request adds three counters.
 * Keys of the previous layout, `2025-11-25|prompt_tokens|team-a|model` (day as a date, the row's
 * field names, total written out), are still read: a reload keeps the zone, and both add up into
 * the same rows. Day and field have fixed shapes and the key id never holds `|`, so the model
 * (which may) is simply the rest. Counters only ever go up through atomic `incr` (no
 * get→modify→set); `x` may go down, as the total it corrects.
 */

import { Fact } from './endFacts';

export type LedgerField = 'requests' | 'errors' | 'prompt_tokens' | 'completion_tokens' | 'total_tokens';

export const LEDGER_FIELDS: LedgerField[] = ['requests', 'errors', 'prompt_tokens', 'completion_tokens', 'total_tokens'];

/** The one-letter fields of the current layout. */
export type LedgerCode = 'r' | 'e' | 'p' | 'c' | 'x';

export const LEDGER_CODES: LedgerCode[] = ['r', 'e', 'p', 'c', 'x'];

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

/** Days since 1970-01-01 (UTC) of a `YYYY-MM-DD` date. */
export function dayNumber(day: string): number {
  return Date.UTC(+day.slice(0, 4), +day.slice(5, 7) - 1, +day.slice(8, 10)) / 86400000;
}

const DAY_RE = /^\d{4}-\d{2}-\d{2}$/;

export function isDay(s: string): boolean {
  return DAY_RE.test(s);
}

/** A key of the current layout; `day` is the day number (dayNumber), as a decimal string. */
export function ledgerKey(day: string, field: LedgerCode, keyId: string, model: string): string {
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
 * Adds what one finished request adds to `d` (atomic `incr`s): nothing when it never named a
 * routable model. `p` is the split $gw_end_facts (core/endFacts.ts), `keyId` is $gw_key_id. The day
 * is the UTC day of nginx's $msec, the log time. The token counts are the decimal strings the body
 * filter leaves in js_vars ("" = not seen; total defaults to prompt + completion).
 * Inline, without a helper call or an intermediate object: this runs in every request's log phase
 * and njs 0.8 pays for each call, each object and each string `+`.
 */
export function addToLedger(d: LedgerCounters, p: string[], keyId: string): void {
  const model = p[Fact.model];
  if (model === '') return;
  let day = (+p[Fact.msec] / 86400) | 0;
  if (!(day > 0)) day = (Date.now() / 86400000) | 0;
  const head = day + '|';
  // Fact.plain "1": the key id holds no "|" (ledgerKeyTail's check, done by nginx).
  const tail = p[Fact.plain] === '1' && keyId !== '' ? '|' + keyId + '|' + model : ledgerKeyTail(keyId, model);
  d.incr(head + 'r' + tail, 1, 0);
  if (+p[Fact.status] >= 400) d.incr(head + 'e' + tail, 1, 0);
  const ps = p[Fact.promptTokens];
  const cs = p[Fact.completionTokens];
  const ts = p[Fact.totalTokens];
  if (ps === '' && cs === '' && ts === '') return;
  // A count the body filter wrote ('' + a non-negative integer; "" reads 0): unary plus reads those
  // exactly as parseInt does, for a fraction of its cost in njs 0.8; anything else takes parseInt.
  let pn = +ps;
  if (!(pn >= 0 && pn % 1 === 0 && pn < 1e21)) pn = parseInt(ps, 10);
  let cn = +cs;
  if (!(cn >= 0 && cn % 1 === 0 && cn < 1e21)) cn = parseInt(cs, 10);
  let tn = pn + cn;
  if (ts !== '') {
    tn = +ts;
    if (!(tn >= 0 && tn % 1 === 0 && tn < 1e21)) tn = parseInt(ts, 10);
  }
  if (!(pn >= 0 && cn >= 0 && tn >= 0)) return;
  if (pn > 0) d.incr(head + 'p' + tail, pn, 0);
  if (cn > 0) d.incr(head + 'c' + tail, cn, 0);
  // The row's total is p + c + x: x only when the response's total is not that sum.
  if (tn !== pn + cn) d.incr(head + 'x' + tail, tn - pn - cn, 0);
}

interface ParsedKey {
  /** `YYYY-MM-DD` */
  day: string;
  /** A field of either layout. */
  field: LedgerField | LedgerCode;
  keyId: string;
  model: string;
}

const DAYNUM_RE = /^\d{1,6}$/;

export function parseLedgerKey(key: string): ParsedKey | null {
  const a = key.indexOf('|');
  const b = a >= 0 ? key.indexOf('|', a + 1) : -1;
  const c = b >= 0 ? key.indexOf('|', b + 1) : -1;
  if (c < 0) return null;
  let day = key.slice(0, a);
  const field = key.slice(a + 1, b) as LedgerField | LedgerCode;
  if (DAYNUM_RE.test(day)) {
    if (LEDGER_CODES.indexOf(field as LedgerCode) < 0) return null;
    day = utcDay(+day * 86400000);
  } else if (!isDay(day) || LEDGER_FIELDS.indexOf(field as LedgerField) < 0) {
    return null;
  }
  return { day: day, field: field, keyId: key.slice(b + 1, c), model: key.slice(c + 1) };
}

/** Adds one counter to its row: a field of the previous layout as is, a code to what it counts. */
function addTo(row: LedgerRow, field: LedgerField | LedgerCode, v: number): void {
  if (field === 'r') row.requests += v;
  else if (field === 'e') row.errors += v;
  else if (field === 'p') {
    row.prompt_tokens += v;
    row.total_tokens += v;
  } else if (field === 'c') {
    row.completion_tokens += v;
    row.total_tokens += v;
  } else if (field === 'x') row.total_tokens += v;
  else row[field] += v;
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
    addTo(row, p.field, items[i][1]);
  }
  rows.sort(function (x, y) {
    if (x.day !== y.day) return x.day < y.day ? 1 : -1; // newest day first
    if (x.key_id !== y.key_id) return x.key_id < y.key_id ? -1 : 1;
    return x.model < y.model ? -1 : x.model > y.model ? 1 : 0;
  });
  return rows;
}

/** Keys of one day (`YYYY-MM-DD`), in either layout (for a reset of that day). */
export function keysOfDay(keys: string[], day: string): string[] {
  const out: string[] = [];
  const prefix = day + '|';
  const numbered = dayNumber(day) + '|';
  for (let i = 0; i < keys.length; i++) if (keys[i].indexOf(prefix) === 0 || keys[i].indexOf(numbered) === 0) out.push(keys[i]);
  return out;
}

/**
 * The usage ledger's layout in a `type=number` shared dict (zone gw_usage): one counter per
 * UTC day, field, key id and model, so a day rolls over by itself and old days expire with the
 * zone's `timeout=` (nginx/logging-http.conf). Keys look like
 *   2025-11-25|prompt_tokens|team-a|Qwen/Qwen2.5-1.5B-Instruct
 * day and field have fixed shapes and the key id never holds `|`, so the model (which may) is
 * simply the rest. Counters only ever go up through atomic `incr` (no get→modify→set).
 */
import { Usage } from './usage';

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

/** `YYYY-MM-DD` (UTC) of a time in ms. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
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

/** Calls add() with the increments one finished request adds: none when it never named a routable model. */
export function ledgerIncrements(model: string, status: number, usage: Usage | null, add: (field: LedgerField, delta: number) => void): void {
  if (model === '') return;
  add('requests', 1);
  if (status >= 400) add('errors', 1);
  if (usage !== null) {
    if (usage.prompt > 0) add('prompt_tokens', usage.prompt);
    if (usage.completion > 0) add('completion_tokens', usage.completion);
    if (usage.total > 0) add('total_tokens', usage.total);
  }
}

/** Usage from the decimal strings the body filter leaves in js_vars ("" = not seen). */
export function usageFromVars(prompt: string, completion: string, total: string): Usage | null {
  if (prompt === '' && completion === '' && total === '') return null;
  const p = prompt !== '' ? parseInt(prompt, 10) : 0;
  const c = completion !== '' ? parseInt(completion, 10) : 0;
  const t = total !== '' ? parseInt(total, 10) : p + c;
  if (!(p >= 0 && c >= 0 && t >= 0)) return null;
  return { prompt: p, completion: c, total: t };
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

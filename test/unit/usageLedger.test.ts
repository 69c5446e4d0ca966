import { describe, expect, it } from 'vitest';
import { END_FACTS } from '../../njs/src/core/endFacts';
import { addToLedger, dayNumber, isDay, keysOfDay, ledgerKey, ledgerRows, parseLedgerKey, utcDay } from '../../njs/src/core/usageLedger';

describe('usage ledger layout', () => {
  const day = String(dayNumber('2025-11-25'));
  it('keys carry day number, field, key id and model; a model may hold any character', () => {
    expect(day).toBe('20417');
    const k = ledgerKey(day, 'p', 'team-a', 'org/model|v2');
    expect(k).toBe('20417|p|team-a|org/model|v2');
    expect(parseLedgerKey(k)).toEqual({ day: '2025-11-25', field: 'p', keyId: 'team-a', model: 'org/model|v2' });
  });
  it('still reads keys of the previous layout (date, field name): a reload keeps the zone', () => {
    expect(parseLedgerKey('2025-11-25|prompt_tokens|team-a|org/model|v2')).toEqual({ day: '2025-11-25', field: 'prompt_tokens', keyId: 'team-a', model: 'org/model|v2' });
  });
  it('an empty key id (auth off) is "-", and a key id never carries the separator', () => {
    expect(ledgerKey(day, 'r', '', 'm')).toBe('20417|r|-|m');
    expect(parseLedgerKey(ledgerKey(day, 'r', 'a|b', 'm'))).toMatchObject({ keyId: 'a_b', model: 'm' });
  });
  it('rejects foreign keys', () => {
    for (const k of ['x', 'a|b|c', '2025-11-25|bogus|k|m', 'yesterday|requests|k|m', '20417|requests|k|m', '2025-11-25|p|k|m', '-1|r|k|m', '1.5|r|k|m']) {
      expect(parseLedgerKey(k)).toBeNull();
    }
  });
  it('days are UTC dates', () => {
    expect(utcDay(Date.UTC(2025, 0, 31, 23, 59, 59))).toBe('2025-01-31');
    // The integer arithmetic agrees with Date on every day from 1970 to 2200 (leap years, century
    // rules), at both ends of the day.
    for (let day = 0; day < 84000; day++) {
      const ms = day * 86400000;
      const want = new Date(ms).toISOString().slice(0, 10);
      if (utcDay(ms) !== want || utcDay(ms + 86399999) !== want) expect([day, utcDay(ms), utcDay(ms + 86399999)]).toEqual([day, want, want]);
    }
    expect(isDay('2025-01-31')).toBe(true);
    expect(isDay('2025-1-31')).toBe(false);
  });
});

/** The split $gw_end_facts of a request on day 20417 (2025-11-25) with these fields. */
function facts(keyId: string, model: string, status: number, prompt: string, completion: string, total: string): string[] {
  const v: Record<string, string> = { status: String(status), msec: String(20417 * 86400 + 3600.5), gw_model: model,
    gw_prompt_tokens: prompt, gw_completion_tokens: completion, gw_total_tokens: total,
    gw_end_plain: /[|"\\\n]/.test(model + keyId) ? '0' : '1' };
  return END_FACTS.map((n) => v[n] ?? '');
}

describe('what one request adds', () => {
  const add = (model: string, status: number, prompt: string, completion: string, total: string) => {
    const got: Record<string, number> = {};
    const d = { incr(k: string, v: number, init: number) { got[k] = (got[k] ?? init) + v; return got[k]; } };
    addToLedger(d, facts('team-a', model, status, prompt, completion, total), 'team-a');
    return got;
  };
  const k = (field: string) => ledgerKey('20417', field as 'r', 'team-a', 'm');
  it.each([
    ['no model: nothing', '', 200, ['', '', ''], {}],
    ['a success without usage', 'm', 200, ['', '', ''], { r: 1 }],
    ['an error', 'm', 502, ['', '', ''], { r: 1, e: 1 }],
    ['tokens: the total is their sum, not written', 'm', 200, ['3', '4', '7'], { r: 1, p: 3, c: 4 }],
    ['embeddings (no completion)', 'm', 200, ['3', '0', '3'], { r: 1, p: 3 }],
    ['total derived from the parts', 'm', 200, ['5', '', ''], { r: 1, p: 5 }],
    ['a total above the sum', 'm', 200, ['3', '4', '9'], { r: 1, p: 3, c: 4, x: 2 }],
    ['a total of 0 with parts', 'm', 200, ['3', '4', '0'], { r: 1, p: 3, c: 4, x: -7 }],
    ['only a total', 'm', 200, ['', '', '6'], { r: 1, x: 6 }],
    ['a value that is not a count: no tokens', 'm', 200, ['x', '', ''], { r: 1 }],
  ] as const)('%s', (_n, model, status, u, want) => {
    const expected: Record<string, number> = {};
    for (const [f, v] of Object.entries(want)) expected[k(f)] = v;
    expect(add(model, status, u[0], u[1], u[2])).toEqual(expected);
  });
});

describe('rows for the admin endpoint', () => {
  const items: [string, number][] = [
    ['2025-11-24|requests|a|m1', 2],
    ['2025-11-25|requests|a|m1', 3],
    ['2025-11-25|prompt_tokens|a|m1', 30],
    ['2025-11-25|completion_tokens|a|m1', 12],
    ['2025-11-25|total_tokens|a|m1', 42],
    // The same day and row in the current layout, after a reload: adds up with the keys above.
    ['20417|r|a|m1', 2],
    ['20417|p|a|m1', 5],
    ['20417|c|a|m1', 4],
    ['20417|x|a|m1', 1],
    ['20417|r|-|m2', 1],
    ['20417|e|-|m2', 1],
    ['garbage', 9],
  ];
  it('folds counters into one row per day, key and model, newest day first', () => {
    expect(ledgerRows(items, {})).toEqual([
      { day: '2025-11-25', key_id: '-', model: 'm2', requests: 1, errors: 1, prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
      { day: '2025-11-25', key_id: 'a', model: 'm1', requests: 5, errors: 0, prompt_tokens: 35, completion_tokens: 16, total_tokens: 52 },
      { day: '2025-11-24', key_id: 'a', model: 'm1', requests: 2, errors: 0, prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
    ]);
  });
  it('what a request adds reads back as the row it stands for', () => {
    const z: Record<string, number> = {};
    const d = { incr(k: string, v: number, init: number) { z[k] = (z[k] ?? init) + v; return z[k]; } };
    addToLedger(d, facts('k', 'm', 200, '3', '4', '9'), 'k');
    addToLedger(d, facts('k', 'm', 500, '1', '', ''), 'k');
    addToLedger(d, facts('k', 'm', 200, '', '', ''), 'k');
    expect(ledgerRows(Object.entries(z), {})).toEqual([
      { day: '2025-11-25', key_id: 'k', model: 'm', requests: 3, errors: 1, prompt_tokens: 4, completion_tokens: 4, total_tokens: 10 },
    ]);
  });
  it('filters by day, key id and model', () => {
    expect(ledgerRows(items, { day: '2025-11-24' })).toHaveLength(1);
    expect(ledgerRows(items, { key_id: 'a' })).toHaveLength(2);
    expect(ledgerRows(items, { model: 'm2', key_id: '-' })).toHaveLength(1);
  });
  it('selects one day for a reset, in both layouts', () => {
    expect(keysOfDay(items.map((i) => i[0]), '2025-11-25')).toHaveLength(10);
    expect(keysOfDay(items.map((i) => i[0]), '2025-11-24')).toHaveLength(1);
  });
});

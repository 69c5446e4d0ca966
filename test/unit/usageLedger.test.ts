import { describe, expect, it } from 'vitest';
import { addToLedger, isDay, keysOfDay, ledgerKey, ledgerRows, parseLedgerKey, utcDay } from '../../njs/src/core/usageLedger';

describe('usage ledger layout', () => {
  it('keys carry day, field, key id and model; a model may hold any character', () => {
    const k = ledgerKey('2025-11-25', 'prompt_tokens', 'team-a', 'org/model|v2');
    expect(k).toBe('2025-11-25|prompt_tokens|team-a|org/model|v2');
    expect(parseLedgerKey(k)).toEqual({ day: '2025-11-25', field: 'prompt_tokens', keyId: 'team-a', model: 'org/model|v2' });
  });
  it('an empty key id (auth off) is "-", and a key id never carries the separator', () => {
    expect(ledgerKey('2025-11-25', 'requests', '', 'm')).toBe('2025-11-25|requests|-|m');
    expect(parseLedgerKey(ledgerKey('2025-11-25', 'requests', 'a|b', 'm'))).toMatchObject({ keyId: 'a_b', model: 'm' });
  });
  it('rejects foreign keys', () => {
    for (const k of ['x', 'a|b|c', '2025-11-25|bogus|k|m', 'yesterday|requests|k|m']) expect(parseLedgerKey(k)).toBeNull();
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

describe('what one request adds', () => {
  const add = (model: string, status: number, prompt: string, completion: string, total: string) => {
    const got: Record<string, number> = {};
    const d = { incr(k: string, v: number, init: number) { got[k] = (got[k] ?? init) + v; return got[k]; } };
    addToLedger(d, '2025-11-25', 'team-a', model, status, prompt, completion, total);
    return got;
  };
  const k = (field: string) => ledgerKey('2025-11-25', field as 'requests', 'team-a', 'm');
  it.each([
    ['no model: nothing', '', 200, ['', '', ''], {}],
    ['a success without usage', 'm', 200, ['', '', ''], { requests: 1 }],
    ['an error', 'm', 502, ['', '', ''], { requests: 1, errors: 1 }],
    ['tokens', 'm', 200, ['3', '4', '7'], { requests: 1, prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 }],
    ['embeddings (no completion)', 'm', 200, ['3', '0', '3'], { requests: 1, prompt_tokens: 3, total_tokens: 3 }],
    ['total derived from the parts', 'm', 200, ['5', '', ''], { requests: 1, prompt_tokens: 5, total_tokens: 5 }],
    ['a value that is not a count: no tokens', 'm', 200, ['x', '', ''], { requests: 1 }],
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
    ['2025-11-25|requests|-|m2', 1],
    ['2025-11-25|errors|-|m2', 1],
    ['garbage', 9],
  ];
  it('folds counters into one row per day, key and model, newest day first', () => {
    expect(ledgerRows(items, {})).toEqual([
      { day: '2025-11-25', key_id: '-', model: 'm2', requests: 1, errors: 1, prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
      { day: '2025-11-25', key_id: 'a', model: 'm1', requests: 3, errors: 0, prompt_tokens: 30, completion_tokens: 12, total_tokens: 42 },
      { day: '2025-11-24', key_id: 'a', model: 'm1', requests: 2, errors: 0, prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
    ]);
  });
  it('filters by day, key id and model', () => {
    expect(ledgerRows(items, { day: '2025-11-24' })).toHaveLength(1);
    expect(ledgerRows(items, { key_id: 'a' })).toHaveLength(2);
    expect(ledgerRows(items, { model: 'm2', key_id: '-' })).toHaveLength(1);
  });
  it('selects one day for a reset', () => {
    expect(keysOfDay(items.map((i) => i[0]), '2025-11-25')).toHaveLength(6);
  });
});

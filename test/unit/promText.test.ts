import { describe, expect, it } from 'vitest';
import { bucketIndex, bucketKey, escapeLabel, Family, formatValue, labelText, renderExposition, seriesKey, sumKey } from '../../njs/src/core/promText';
import { histogram, parseExposition, sampleValue } from '../support/prometheus';

const FAMS: Family[] = [
  { name: 'x_total', type: 'counter', help: 'a counter\nwith a newline and a \\ backslash' },
  { name: 'x_seconds', type: 'histogram', help: 'a histogram', buckets: [0.1, 1] },
  { name: 'x_up', type: 'gauge', help: 'a gauge' },
];

describe('Prometheus text rendering', () => {
  it('escapes label values as the format requires', () => {
    expect(escapeLabel('plain/model-1.5B')).toBe('plain/model-1.5B');
    expect(escapeLabel('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
    expect(labelText(['model', 'key_id'], ['m"1', ''])).toBe('model="m\\"1",key_id=""');
  });

  it('puts each observation in the first bucket whose bound is >= it', () => {
    const b = [0.1, 1, 10];
    expect([0, 0.1, 0.1000001, 1, 9.99, 10, 11, 1e9].map((v) => bucketIndex(b, v))).toEqual([0, 0, 1, 1, 2, 2, 3, 3]);
  });

  it('formats values the way Go parses them', () => {
    expect([1, 0.25, 1e-7, Infinity, -Infinity, NaN].map(formatValue)).toEqual(['1', '0.25', '1e-7', '+Inf', '-Inf', 'NaN']);
  });

  it('renders stored counters and non-cumulative buckets as cumulative histograms, valid for a strict parser', () => {
    const a = labelText(['model'], ['a"1']);
    const b = labelText(['model'], ['b']);
    const stored: [string, number][] = [
      [seriesKey('x_total', a), 3], [seriesKey('x_total', b), 1],
      [bucketKey(seriesKey('x_seconds', a), 0), 2], [bucketKey(seriesKey('x_seconds', a), 2), 1], [sumKey(seriesKey('x_seconds', a)), 5.25],
      [bucketKey(seriesKey('x_seconds', b), 1), 4], [sumKey(seriesKey('x_seconds', b)), 2],
      // Not listed families and malformed keys are ignored.
      [seriesKey('retired_total', a), 9], ['nonsense', 1], [bucketKey(seriesKey('x_seconds', a), 99), 1],
    ];
    const text = renderExposition(FAMS, stored, [{ family: 'x_up', labels: '', value: 1 }]);
    const e = parseExposition(text);
    expect(sampleValue(e.fams, 'x_total', { model: 'a"1' })).toBe(3);
    expect(sampleValue(e.fams, 'x_up', {})).toBe(1);
    expect(histogram(e, 'x_seconds', { model: 'a"1' })).toEqual({ count: 3, sum: 5.25, buckets: { '0.1': 2, '1': 2, '+Inf': 3 } });
    expect(histogram(e, 'x_seconds', { model: 'b' })).toEqual({ count: 4, sum: 2, buckets: { '0.1': 0, '1': 4, '+Inf': 4 } });
    expect(text).not.toContain('retired_total');
    expect(text).toContain('# HELP x_total a counter\\nwith a newline and a \\\\ backslash');
  });

  it('declares every family even with no samples, in the listed order', () => {
    const text = renderExposition(FAMS, [], []);
    expect(text.split('\n').filter((l) => l.startsWith('# TYPE'))).toEqual(['# TYPE x_total counter', '# TYPE x_seconds histogram', '# TYPE x_up gauge']);
    expect(() => parseExposition(text)).not.toThrow();
  });
});

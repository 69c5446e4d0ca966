import { describe, expect, it } from 'vitest';
import { classifyProbe, DOWN, FALL, healthFresh, nextHealth, ProbeResult, ready, STALE_MS, Status, UNKNOWN, UP, upstreamStatus } from '../../njs/src/core/health';

function run(probes: ProbeResult[]): number[] {
  let h = { state: UNKNOWN, fails: 0 };
  return probes.map((p) => (h = nextHealth(h, p)).state);
}

describe('active health checks', () => {
  it('takes a never-seen server down at its first failure', () => {
    expect(run(['fail'])).toEqual([DOWN]);
  });

  it(`keeps an up server up until ${FALL} consecutive failures, and one success brings it back`, () => {
    expect(FALL).toBe(2);
    expect(run(['ok', 'fail', 'ok', 'fail', 'fail', 'fail', 'ok'])).toEqual([UP, UP, UP, UP, DOWN, DOWN, UP]);
  });

  it('marks servers it cannot probe (host name without resolver) unknown, not down', () => {
    expect(classifyProbe(0, 'localhost could not be resolved (no resolver defined)')).toBe('unprobeable');
    expect(run(['ok', 'unprobeable'])).toEqual([UP, UNKNOWN]);
  });

  it('classifies probe answers', () => {
    expect(classifyProbe(200, '')).toBe('ok');
    expect(classifyProbe(204, '')).toBe('ok');
    expect(classifyProbe(503, '')).toBe('fail');
    expect(classifyProbe(0, 'connect failed')).toBe('fail');
    expect(classifyProbe(0, 'read timed out')).toBe('fail');
  });

  it('an upstream is up with any server up, down only when all are down', () => {
    expect(upstreamStatus([DOWN, UP])).toBe('up');
    expect(upstreamStatus([DOWN, DOWN])).toBe('down');
    expect(upstreamStatus([DOWN, UNKNOWN])).toBe('unknown');
    expect(upstreamStatus([])).toBe('unknown');
  });

  it('ignores health data the refresher has not renewed lately', () => {
    expect(healthFresh(undefined, 1000)).toBe(false);
    expect(healthFresh(1000, 1000 + STALE_MS)).toBe(true);
    expect(healthFresh(1000, 1001 + STALE_MS)).toBe(false);
  });

  it('readiness policies', () => {
    const cases: [Status[], boolean, boolean][] = [
      [['up', 'up'], true, true],
      [['up', 'unknown'], true, true],
      [['up', 'down'], false, true],
      [['down', 'down'], false, false],
      [[], true, true],
    ];
    for (const [s, all, any] of cases) {
      expect(ready(s, 'all'), `all ${s}`).toBe(all);
      expect(ready(s, 'any'), `any ${s}`).toBe(any);
    }
  });
});

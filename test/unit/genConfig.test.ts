import { describe, expect, it } from 'vitest';
import { normalizeConfig, parseDuration, renderRoutesConf, renderRoutesModule } from '../../scripts/gen-config.mjs';
import { modelAllowed } from '../../njs/src/core/access';
import { resolveModel, RouteTable } from '../../njs/src/core/routes';

const base = {
  upstreams: { be_a: { servers: ['127.0.0.1:9001', '127.0.0.1:9002 backup'] } },
  models: { 'org/m-1': { upstream: 'be_a', aliases: ['m1'], max_inflight: 4 } },
};

describe('gen-config', () => {
  it('parses durations', () => {
    expect(parseDuration('500ms', 'x')).toBe(500);
    expect(parseDuration('60s', 'x')).toBe(60000);
    expect(parseDuration('2m', 'x')).toBe(120000);
    expect(() => parseDuration('soon', 'x')).toThrow(/not a duration/);
  });

  it('normalizes defaults', () => {
    const c = normalizeConfig(base);
    expect(c.models['org/m-1']).toMatchObject({ upstream: 'be_a', max_inflight: 4, max_queue: 0, queue_timeout_ms: 30000, capabilities: ['chat', 'completions'] });
    expect(c.aliases).toEqual({ m1: 'org/m-1' });
    expect(c.upstreams.be_a).toMatchObject({ keepalive: 32, max_fails: 2, fail_timeout_ms: 10000 });
  });

  it('renders upstream blocks with least_conn, passive health and keepalive', () => {
    const conf = renderRoutesConf(normalizeConfig(base), 'x.json');
    expect(conf).toContain('upstream be_a {\n    least_conn;\n    server 127.0.0.1:9001 max_fails=2 fail_timeout=10s;\n    server 127.0.0.1:9002 backup max_fails=2 fail_timeout=10s;\n    keepalive 32;\n}');
  });

  it('renders a table the njs module can import', async () => {
    const js = renderRoutesModule(normalizeConfig(base), 'x.json');
    const mod = await import(`data:text/javascript,${encodeURIComponent(js)}`);
    const t = mod.default() as RouteTable;
    expect(t.upstreams.be_a.servers).toEqual(['127.0.0.1:9001', '127.0.0.1:9002']);
    expect(resolveModel(t, 'm1')).toMatchObject({ ok: true, model: 'org/m-1', alias: true });
    expect(resolveModel(t, 'org/m-1')).toMatchObject({ ok: true, alias: false });
    expect(resolveModel(t, 'constructor')).toEqual({ ok: false });
    expect(resolveModel(t, '__proto__')).toEqual({ ok: false });
  });

  const invalid: [string, unknown, RegExp][] = [
    ['no upstreams', { models: {} }, /at least one upstream/],
    ['bad upstream name', { upstreams: { 'a-b': { servers: ['h:1'] } }, models: {} }, /letters, digits and _/],
    ['directive injection', { upstreams: { a: { servers: ['h:1; include /etc/passwd'] } }, models: {} }, /not "host:port/],
    ['unknown upstream', { upstreams: { a: { servers: ['h:1'] } }, models: { m: { upstream: 'b' } } }, /must be one of the upstreams \(a\)/],
    ['bad capability', { upstreams: { a: { servers: ['h:1'] } }, models: { m: { upstream: 'a', capabilities: ['telepathy'] } } }, /not one of/],
    ['negative cap', { upstreams: { a: { servers: ['h:1'] } }, models: { m: { upstream: 'a', max_inflight: -1 } } }, /integer from 0/],
    ['alias clash', { upstreams: { a: { servers: ['h:1'] } }, models: { m: { upstream: 'a', aliases: ['n'] }, n: { upstream: 'a' } } }, /already a model or an alias/],
    ['no models', { upstreams: { a: { servers: ['h:1'] } }, models: {} }, /at least one model/],
  ];
  for (const [name, raw, re] of invalid) {
    it(`rejects ${name} with a message that names the fix`, () => {
      expect(() => normalizeConfig(raw)).toThrow(re);
    });
  }
});

describe('modelAllowed', () => {
  it('allows everything without auth or with *', () => {
    expect(modelAllowed('', 'a', 'a')).toBe(true);
    expect(modelAllowed('*', 'a', 'a')).toBe(true);
  });
  it('checks canonical and requested names against the list', () => {
    expect(modelAllowed('["a"]', 'a', 'alias')).toBe(true);
    expect(modelAllowed('["alias"]', 'a', 'alias')).toBe(true);
    expect(modelAllowed('["b"]', 'a', 'a')).toBe(false);
    expect(modelAllowed('not json', 'a', 'a')).toBe(false);
    expect(modelAllowed('{"a":1}', 'a', 'a')).toBe(false);
  });
});

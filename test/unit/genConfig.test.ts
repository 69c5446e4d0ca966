import { describe, expect, it } from 'vitest';
import { normalizeConfig, parseDuration, renderRoutesConf, renderRoutesModule } from '../../scripts/gen-config.mjs';
import { modelAllowed } from '../../njs/src/core/access';
import { resolveModel, RouteTable, upstreamBearer } from '../../njs/src/core/routes';

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
    expect(conf).toContain('upstream be_a {\n    least_conn;\n    server 127.0.0.1:9001 max_fails=2 fail_timeout=10s;\n    server 127.0.0.1:9002 backup max_fails=2 fail_timeout=10s;\n    keepalive 32;\n    keepalive_timeout 4s;\n}');
  });

  it('closes idle upstream connections before vLLM does (uvicorn: 5 s): keepalive_timeout 4s unless set', () => {
    expect(normalizeConfig(base).upstreams.be_a.keepalive_timeout_ms).toBe(4000);
    const raw = structuredClone(base) as any;
    raw.upstreams.be_a.keepalive_timeout = '2s';
    expect(renderRoutesConf(normalizeConfig(raw), 'x.json')).toMatch(/^ {4}keepalive_timeout 2s;$/m);
    // Without a keepalive pool (or on nginx 1.30, where upstreams keep connections by default) too.
    raw.upstreams.be_a.keepalive = 0;
    const conf = renderRoutesConf(normalizeConfig(raw), 'x.json');
    expect(conf).not.toMatch(/keepalive \d/);
    expect(conf).toMatch(/^ {4}keepalive_timeout 2s;$/m);
    for (const bad of ['500ms', '0s', '1500ms', 'soon']) {
      raw.upstreams.be_a.keepalive_timeout = bad;
      expect(() => normalizeConfig(raw), bad).toThrow(/keepalive_timeout/);
    }
  });

  it('with resolve: a zone per upstream and `resolve` on host names, not on literal addresses', () => {
    const raw = { upstreams: { be_a: { servers: ['vllm-a:8000', 'vllm-b:8000 backup', '10.0.0.5:8000', '[::1]:8000'] } }, models: base.models };
    const conf = renderRoutesConf(normalizeConfig(raw), 'x.json', undefined, { resolve: true });
    expect(conf).toContain('    zone upstream_be_a 64k;\n');
    expect(conf).toContain('    server vllm-a:8000 max_fails=2 fail_timeout=10s resolve;\n');
    expect(conf).toContain('    server vllm-b:8000 backup max_fails=2 fail_timeout=10s resolve;\n');
    expect(conf).toContain('    server 10.0.0.5:8000 max_fails=2 fail_timeout=10s;\n');
    expect(conf).toContain('    server [::1]:8000 max_fails=2 fail_timeout=10s;\n');
    // Off by default: nginx/gateway.json's literal addresses, and nginx < 1.27.3.
    expect(renderRoutesConf(normalizeConfig(raw), 'x.json')).not.toMatch(/resolve|zone/);
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
    // The table is a plain object here (the preloaded one has no prototype): nothing it inherits
    // resolves as a model, an alias or an upstream with a key.
    const inherited = Object.getOwnPropertyNames(Object.prototype).concat(['__proto__']);
    const env = Object.fromEntries(inherited.map((n) => [n, 'leak']));
    for (const name of inherited) {
      expect(resolveModel(t, name)).toEqual({ ok: false });
      expect(upstreamBearer(t, name, env)).toBe('');
    }
    // An alias whose name is inherited, pointing at a real model, still resolves (own entries win).
    const tricky: RouteTable = { models: { m: t.models['org/m-1'] }, aliases: Object.assign(Object.create(null), { constructor: 'm' }), upstreams: t.upstreams };
    expect(resolveModel(tricky, 'constructor')).toMatchObject({ ok: true, model: 'm', alias: true });
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

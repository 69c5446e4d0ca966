/**
 * GW_JS_ENGINE / GW_JS_CONTEXT_REUSE render into nginx.conf.example's __JS_ENGINE__ placeholder, and
 * nothing else: unset means no js_engine line (njs's default engine, and nginx builds without
 * QuickJS keep working); a value that is not an engine is refused rather than rendered.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { renderNginxConf } from '../../tools/config';

const saved = { engine: process.env.GW_JS_ENGINE, reuse: process.env.GW_JS_CONTEXT_REUSE };
afterEach(() => {
  for (const [k, v] of [['GW_JS_ENGINE', saved.engine], ['GW_JS_CONTEXT_REUSE', saved.reuse]] as const) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

const render = () => renderNginxConf({ prefix: '/p', listen: '127.0.0.1:1', adminListen: '127.0.0.1:2', jsModule: null });
const engineLines = (c: string) => c.split('\n').filter((l) => /^\s*js_(engine|context_reuse)\b/.test(l) || /\bjs_(engine|context_reuse) /.test(l.replace(/#.*/, '')));

describe('js engine switch', () => {
  it('renders no js_engine line by default', () => {
    delete process.env.GW_JS_ENGINE;
    delete process.env.GW_JS_CONTEXT_REUSE;
    expect(engineLines(render())).toEqual([]);
    expect(render()).not.toMatch(/__JS_ENGINE__/);
  });

  it('GW_JS_ENGINE=qjs renders js_engine qjs inside http{}', () => {
    process.env.GW_JS_ENGINE = 'qjs';
    const c = render();
    expect(engineLines(c).map((l) => l.trim())).toEqual(['js_engine qjs;']);
    expect(c.search(/^\s+js_engine qjs;$/m)).toBeGreaterThan(c.search(/^http \{$/m));
  });

  it('an explicit jsEngine option wins over the environment', () => {
    process.env.GW_JS_ENGINE = 'qjs';
    const c = renderNginxConf({ prefix: '/p', listen: '127.0.0.1:1', adminListen: '127.0.0.1:2', jsModule: null, jsEngine: null });
    expect(engineLines(c)).toEqual([]);
  });

  it('GW_JS_CONTEXT_REUSE adds js_context_reuse', () => {
    process.env.GW_JS_ENGINE = 'qjs';
    process.env.GW_JS_CONTEXT_REUSE = '0';
    expect(engineLines(render()).map((l) => l.trim())).toEqual(['js_engine qjs; js_context_reuse 0;']);
  });

  it.each(['quickjs', 'QJS', 'v8', ' qjs'])('refuses GW_JS_ENGINE=%j with the fix in the message', (v) => {
    process.env.GW_JS_ENGINE = v;
    expect(render).toThrow(/use qjs .* or njs/);
  });

  it('refuses a GW_JS_CONTEXT_REUSE that is not a number', () => {
    delete process.env.GW_JS_ENGINE;
    process.env.GW_JS_CONTEXT_REUSE = 'lots';
    expect(render).toThrow(/number of contexts/);
  });
});

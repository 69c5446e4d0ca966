/**
 * One owner per concept: where a list must also be written elsewhere (a plain-JS generator, a JSON
 * schema, an nginx map), these checks keep every copy equal to the owner in njs/src/core.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { allModelsAllowed, modelAllowed } from '../../njs/src/core/access';
import { errorText, FAILED_LINE, failedText, LOG_PREFIX } from '../../njs/src/core/logText';
import { CAPABILITY_ENDPOINTS } from '../../njs/src/core/metadata';
import { aliasesByModel, CAPABILITIES, RouteTable, upstreamBearer } from '../../njs/src/core/routes';
import { CAPABILITIES as GEN_CONFIG_CAPABILITIES } from '../../scripts/gen-config.mjs';
import { nginxDir } from '../../tools/config';
import { BAD_LOG } from '../../tools/nginx';

const json = (name: string) => JSON.parse(readFileSync(join(nginxDir, name), 'utf8'));

/** path → value of the `map $uri $gw_log_endpoint` block in nginx/logging-http.conf. */
function logEndpointMap(): { [path: string]: string } {
  const conf = readFileSync(join(nginxDir, 'logging-http.conf'), 'utf8');
  const block = /map \$uri \$gw_log_endpoint \{([^}]*)\}/.exec(conf);
  if (!block) throw new Error('nginx/logging-http.conf has no `map $uri $gw_log_endpoint` block');
  const out: { [path: string]: string } = {};
  for (const line of block[1].split('\n')) {
    const m = /^\s*(\S+)\s+(\S+);/.exec(line);
    if (m) out[m[1]] = m[2];
  }
  return out;
}

describe('capabilities and endpoints have one list', () => {
  it('the config generator validates against the same capabilities as the code', () => {
    expect([...GEN_CONFIG_CAPABILITIES]).toEqual(CAPABILITIES);
  });

  it('the metadata schema allows exactly those capabilities', () => {
    expect(json('metadata-schema.json').definitions.capability.enum).toEqual(CAPABILITIES);
  });

  it('every capability has endpoints, and no endpoint list names an unknown capability', () => {
    expect(Object.keys(CAPABILITY_ENDPOINTS).sort()).toEqual([...CAPABILITIES].sort());
    for (const c of CAPABILITIES) expect(CAPABILITY_ENDPOINTS[c].length, c).toBeGreaterThan(0);
  });

  it('the access log names every capability endpoint, and its schema allows exactly the names the map writes', () => {
    const map = logEndpointMap();
    for (const c of CAPABILITIES) for (const path of CAPABILITY_ENDPOINTS[c]) expect(map[path], `${path} in logging-http.conf`).toMatch(/^[a-z]+$/);
    expect(map['/v1/models']).toBe('models');
    const written = [...new Set(Object.values(map))].sort();
    expect([...json('log-schema.json').properties.endpoint.enum].sort()).toEqual(written);
  });
});

describe('routing-table helpers', () => {
  const t: RouteTable = {
    models: {},
    aliases: { a: 'm1', b: 'm2', c: 'm1' },
    upstreams: { up: { servers: [], api_key_env: 'UP_KEY' }, none: { servers: [], api_key_env: '' } },
  };

  it('inverts the aliases in table order, and an unknown name has none', () => {
    const inv = aliasesByModel(t);
    expect(inv.m1).toEqual(['a', 'c']);
    expect(inv.m2).toEqual(['b']);
    expect(inv.constructor).toBeUndefined();
  });

  it('sends an upstream its own key only when its variable is set and not empty', () => {
    expect(upstreamBearer(t, 'up', { UP_KEY: 'k1' })).toBe('Bearer k1');
    expect(upstreamBearer(t, 'up', { UP_KEY: '' })).toBe('');
    expect(upstreamBearer(t, 'up', {})).toBe('');
    expect(upstreamBearer(t, 'none', { '': 'x' })).toBe('');
    expect(upstreamBearer(t, 'missing', { UP_KEY: 'k1' })).toBe('');
    expect(upstreamBearer(t, 'constructor', { UP_KEY: 'k1' })).toBe('');
  });
});

describe('all models allowed', () => {
  it('is said only by auth off ("") or "*", and agrees with modelAllowed', () => {
    for (const spec of ['', '*']) {
      expect(allModelsAllowed(spec)).toBe(true);
      expect(modelAllowed(spec, 'x', 'y')).toBe(true);
    }
    for (const spec of ['[]', '["*"]', '**', ' *', 'null', '["x"]', '{']) {
      expect(allModelsAllowed(spec), spec).toBe(false);
      expect(modelAllowed(spec, 'y', 'y'), spec).toBe(false);
    }
  });
});

describe('the log line format', () => {
  it('the harness flags exactly the failure lines the gateway writes', () => {
    const line = LOG_PREFIX + failedText('admin', new Error('boom'));
    expect(FAILED_LINE.test(line)).toBe(true);
    expect(BAD_LOG.test(`2026/12/01 [error] 12#12: *3 js: ${line}`)).toBe(true);
    expect(BAD_LOG.test(`2026/12/01 [warn] 12#12: *3 js: ${LOG_PREFIX}keys: a problem`)).toBe(false);
  });

  it('prints a stack when there is one, else the value', () => {
    expect(errorText(new Error('boom'))).toMatch(/^Error: boom\n\s+at /);
    expect(errorText('plain')).toBe('plain');
    expect(errorText(undefined)).toBe('undefined');
    expect(errorText({ stack: '' })).toBe('[object Object]');
    // QuickJS: the stack holds the frames only; the error's name and message go in front.
    const qjs = { name: 'TypeError', message: 'boom', stack: '    at route (gateway.js:419:39)\n', toString: () => 'TypeError: boom' };
    expect(errorText(qjs)).toBe('TypeError: boom\n    at route (gateway.js:419:39)\n');
    const unprintable = { stack: '    at f (x.js:1:1)', toString: () => { throw new Error('no'); } };
    expect(errorText(unprintable)).toBe('    at f (x.js:1:1)');
  });
});

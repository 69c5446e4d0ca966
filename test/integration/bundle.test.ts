/**
 * The built bundle and every include, loaded by the real nginx + njs (`nginx -t` compiles the njs
 * module): syntax njs rejects that esbuild let through (e.g. `await` inside call arguments on
 * njs 0.8) fails here with nginx's own message, before any behaviour test runs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderNginxConf } from '../support/config';
import { findNginx } from '../support/findNginx';
import { testConfig } from '../support/nginx';
import { requireBundle } from '../support/stack';

describe('bundle in real nginx', () => {
  it('nginx -t accepts nginx.conf.example with the built bundle', () => {
    requireBundle();
    const rt = findNginx({ quiet: true });
    const prefix = mkdtempSync(join(tmpdir(), 'gw-t-'));
    try {
      const r = testConfig(rt, prefix, renderNginxConf({ prefix, listen: '127.0.0.1:1', jsModule: rt.jsModule }));
      expect(r.output).toMatch(/test is successful/);
      expect(r.output).not.toMatch(/\[emerg\]|\[alert\]|SyntaxError/);
      expect(r.ok).toBe(true);
    } finally {
      rmSync(prefix, { recursive: true, force: true });
    }
  });
});

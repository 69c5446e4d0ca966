import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { errorCodes, gwError } from '../../njs/src/core/errors';
import { nginxDir } from '../support/config';

describe('error catalogue', () => {
  it('builds the OpenAI envelope for every code', () => {
    for (const code of errorCodes()) {
      const e = gwError(code);
      const body = JSON.parse(e.body);
      expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
      expect(body.error.code).toBe(code);
      expect(e.status).toBeGreaterThanOrEqual(400);
      expect(body.error.message.length).toBeGreaterThan(10);
    }
  });
  it('keeps a caller message and escapes it', () => {
    const e = gwError('model_not_found', 'no "x"\n');
    expect(JSON.parse(e.body).error.message).toBe('no "x"\n');
  });
  it('matches every static JSON error body in the nginx includes', () => {
    const files = ['gateway-server.conf', 'nginx.conf.example'];
    let seen = 0;
    for (const f of files) {
      const text = readFileSync(join(nginxDir, f), 'utf8');
      for (const m of text.matchAll(/return (\d{3}) '(\{"error".*?\})';/g)) {
        const body = JSON.parse(m[2]);
        const e = gwError(body.error.code);
        expect(m[1], `${f}: status of ${body.error.code}`).toBe(String(e.status));
        expect(body, `${f}: body of ${body.error.code}`).toEqual(JSON.parse(e.body));
        seen++;
      }
    }
    expect(seen).toBeGreaterThanOrEqual(4);
  });
});

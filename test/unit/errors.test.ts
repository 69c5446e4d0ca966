import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { errorCodes, gwError } from '../../njs/src/core/errors';
import { nginxDir } from '../../tools/config';

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
  // Every file in nginx/ (includes and the example), so a new include cannot slip past.
  const nginxFiles = readdirSync(nginxDir).filter((f) => f.endsWith('.conf') || f.endsWith('.example'));
  const text = (f: string) => readFileSync(join(nginxDir, f), 'utf8');

  it('matches every static JSON error body in nginx/', () => {
    expect(nginxFiles).toEqual(expect.arrayContaining(['edge-server.conf', 'gateway-server.conf', 'nginx.conf.example']));
    let seen = 0;
    for (const f of nginxFiles) {
      const t = text(f);
      // Any error status returned with a literal body must be one the check below parses.
      const all = t.match(/return [45]\d\d '/g) ?? [];
      const bodies = [...t.matchAll(/return (\d{3}) '(\{"error".*?\})';/g)];
      expect(bodies.length, `${f}: a return body that is not a one-line OpenAI error`).toBe(all.length);
      for (const m of bodies) {
        const body = JSON.parse(m[2]);
        const e = gwError(body.error.code);
        expect(m[1], `${f}: status of ${body.error.code}`).toBe(String(e.status));
        expect(body, `${f}: body of ${body.error.code}`).toEqual(JSON.parse(e.body));
        seen++;
      }
    }
    expect(seen).toBeGreaterThanOrEqual(18);
  });

  it('edge-server.conf sends every nginx-made error to a location that answers it in JSON', () => {
    const t = text('edge-server.conf');
    const codes: string[] = [];
    for (const m of t.matchAll(/^error_page ((?:\d{3} )+)(=\s*)?(\S+);/gm)) {
      for (const code of m[1].trim().split(' ')) {
        codes.push(code);
        const target = m[3].replace('${gw_error_via}', '@gw_e');
        expect(t, `error_page ${code} → ${target}`).toContain(`location ${target} {`);
        if (m[3].startsWith('${gw_error_via}')) expect(t).toContain(`location = /_gw_error/${code} {`);
      }
    }
    expect(codes.sort()).toEqual(['400', '404', '405', '408', '413', '414', '494', '500', '501', '502', '503', '504', '505']);
    // Both servers of the example get them.
    expect(text('nginx.conf.example').match(/include __NGINX__\/edge-server\.conf;/g)).toHaveLength(2);
  });

  it('every location that checks an API key fails closed, with the same line', () => {
    const checks: string[] = [];
    for (const f of nginxFiles) {
      for (const line of text(f).split('\n')) {
        if (/^\s*#/.test(line) || !line.includes('$gw_auth ') && !line.includes('$gw_auth)')) continue;
        checks.push(`${f}: ${line.trim()}`);
      }
    }
    const allow = checks.filter((c) => !/@gw_auth_refused|if \(\$gw_auth = (401|429)\)|js_set \$gw_auth gw\.auth;/.test(c));
    expect(allow, 'a $gw_auth test that is not the fail-closed form').toEqual([]);
    const gates = checks.filter((c) => c.includes('if ($gw_auth != ok) { error_page 418 = @gw_auth_refused; return 418; }'));
    expect(gates.map((c) => c.split(':')[0]).sort()).toEqual(['discovery-server.conf', 'discovery-server.conf', 'discovery-server.conf', 'gateway-server.conf']);
    // The 401/429 branches live only in the one named location.
    const refused = /location @gw_auth_refused \{[\s\S]*?\n\}/.exec(text('gateway-server.conf'))![0];
    expect(refused).toContain('if ($gw_auth = 401)');
    expect(refused).toContain('if ($gw_auth = 429)');
    expect(refused).toMatch(/return 500 '\{"error"/);
  });
});

/**
 * Dev helper: mints an HS256/384/512 token for trying the gateway's JWT auth (docs/jwt.md) with the
 * secret the gateway has in GW_JWT_SECRET. Production tokens come from the identity provider.
 *   GW_JWT_SECRET=... npx tsx scripts/gw-jwt.ts --sub alice --models 'chat,embed' --tier high --ttl 3600
 */
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    sub: { type: 'string' }, models: { type: 'string' }, tier: { type: 'string' }, rpm: { type: 'string' }, burst: { type: 'string' },
    groups: { type: 'string' }, iss: { type: 'string' }, aud: { type: 'string' }, ttl: { type: 'string', default: '3600' },
    alg: { type: 'string', default: 'HS256' },
  },
});
const secret = process.env.GW_JWT_SECRET || (process.env.GW_JWT_SECRET_FILE ? readFileSync(process.env.GW_JWT_SECRET_FILE, 'utf8').replace(/[\r\n]+$/, '') : '');
if (!values.sub || !secret || !/^HS(256|384|512)$/.test(values.alg)) {
  console.error('usage: GW_JWT_SECRET=<secret> gw-jwt --sub <id> [--models "*"|a,b] [--tier high|normal|low] [--rpm n] [--burst n] [--groups g1,g2] [--iss s] [--aud s] [--ttl seconds] [--alg HS256|HS384|HS512]');
  process.exit(2);
}
const now = Math.floor(Date.now() / 1000);
const claims: Record<string, unknown> = { sub: values.sub, iat: now, exp: now + Number(values.ttl) };
if (values.models) claims.models = values.models === '*' ? '*' : values.models.split(',').map((m) => m.trim()).filter(Boolean);
if (values.tier) claims.tier = values.tier;
if (values.rpm) claims.rpm = Number(values.rpm);
if (values.burst) claims.burst = Number(values.burst);
if (values.groups) claims.groups = values.groups.split(',').map((g) => g.trim()).filter(Boolean);
if (values.iss) claims.iss = values.iss;
if (values.aud) claims.aud = values.aud;
const b64u = (s: string | Buffer) => Buffer.from(s).toString('base64url');
const input = `${b64u(JSON.stringify({ alg: values.alg, typ: 'JWT' }))}.${b64u(JSON.stringify(claims))}`;
console.log(`${input}.${b64u(createHmac(`sha${values.alg.slice(2)}`, secret).update(input).digest())}`);

// The "jwt" section of gateway.json: validated here at build time, rendered into the routing table
// (scripts/gen-config.mjs) where njs/src/core/jwt.ts reads it as JwtConfig. Secrets and key
// sources are not here: they come from GW_JWT_SECRET(_FILE) and GW_JWKS_URL / GW_JWKS_FILE
// (docs/jwt.md).
import { parseDuration } from './gen-config.mjs';

const ALGS = ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'];
const TIERS = ['high', 'normal', 'low'];
const CLAIMS = ['key_id', 'models', 'tier', 'rpm', 'burst', 'groups'];
const FIELDS = ['issuer', 'audience', 'leeway', 'require_exp', 'max_token_bytes', 'max_header_bytes', 'jwks_refresh', 'jwks_retry', 'algorithms', 'claims', 'policies'];
const CLAIM_RE = /^[A-Za-z0-9_:/.-]{1,128}$/;

function int(v, dflt, what, min, max) {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < min || v > max) throw new Error(`${what}: must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  return v;
}

function str(v, what) {
  if (v === undefined) return '';
  if (typeof v !== 'string' || v.length > 512) throw new Error(`${what}: must be a string`);
  return v;
}

/** gateway.json "jwt" (may be absent) → the JwtConfig njs reads; throws an Error that names the fix. */
export function normalizeJwtConfig(raw, source = 'gateway.json') {
  const at = `${source}: jwt`;
  const j = raw === undefined ? {} : raw;
  if (!j || typeof j !== 'object' || Array.isArray(j)) throw new Error(`${at}: must be an object`);
  for (const k of Object.keys(j)) if (!FIELDS.includes(k)) throw new Error(`${at}: unknown field "${k}"; allowed: ${FIELDS.join(', ')}`);
  const leewayMs = parseDuration(j.leeway ?? '30s', `${at}.leeway`);
  if (leewayMs > 300000) throw new Error(`${at}.leeway: at most "5m"; clocks that far apart need fixing, not a wider window`);
  const algorithms = j.algorithms ?? [];
  if (!Array.isArray(algorithms) || algorithms.some((a) => !ALGS.includes(a))) throw new Error(`${at}.algorithms: a list of ${ALGS.join(', ')}`);
  const claims = { key_id: 'sub', models: 'models', tier: 'tier', rpm: 'rpm', burst: 'burst', groups: 'groups' };
  for (const [k, v] of Object.entries(j.claims ?? {})) {
    if (!CLAIMS.includes(k)) throw new Error(`${at}.claims: unknown claim role "${k}"; allowed: ${CLAIMS.join(', ')}`);
    if (typeof v !== 'string' || !CLAIM_RE.test(v)) throw new Error(`${at}.claims.${k}: a claim name (dots walk into objects, e.g. "realm_access.roles")`);
    claims[k] = v;
  }
  const policies = [];
  const list = j.policies ?? [];
  if (!Array.isArray(list)) throw new Error(`${at}.policies: a list of {"group", "models", "tier", "rpm", "burst"}; the first group the token lists wins`);
  list.forEach((p, i) => {
    const pat = `${at}.policies[${i}]`;
    if (!p || typeof p !== 'object' || typeof p.group !== 'string' || p.group === '') throw new Error(`${pat}.group: the group or role name the token lists`);
    for (const k of Object.keys(p)) if (!['group', 'models', 'tier', 'rpm', 'burst'].includes(k)) throw new Error(`${pat}: unknown field "${k}"`);
    const out = { group: p.group };
    if (p.models !== undefined) {
      if (p.models !== '*' && !(Array.isArray(p.models) && p.models.every((m) => typeof m === 'string' && m !== ''))) throw new Error(`${pat}.models: "*" or a list of model names`);
      out.models = p.models;
    }
    if (p.tier !== undefined) {
      if (!TIERS.includes(p.tier)) throw new Error(`${pat}.tier: one of ${TIERS.join(', ')}`);
      out.tier = p.tier;
    }
    if (p.rpm !== undefined) out.rpm = int(p.rpm, 0, `${pat}.rpm`, 0, 1000000);
    if (p.burst !== undefined) out.burst = int(p.burst, 0, `${pat}.burst`, 0, 100000);
    policies.push(out);
  });
  if (j.require_exp !== undefined && typeof j.require_exp !== 'boolean') throw new Error(`${at}.require_exp: true or false`);
  return {
    issuer: str(j.issuer, `${at}.issuer`),
    audience: str(j.audience, `${at}.audience`),
    leeway_sec: Math.floor(leewayMs / 1000),
    require_exp: j.require_exp !== false,
    max_token_bytes: int(j.max_token_bytes, 8192, `${at}.max_token_bytes`, 256, 65536),
    max_header_bytes: int(j.max_header_bytes, 1024, `${at}.max_header_bytes`, 64, 8192),
    jwks_refresh_sec: Math.max(1, Math.floor(parseDuration(j.jwks_refresh ?? '5m', `${at}.jwks_refresh`) / 1000)),
    jwks_retry_sec: Math.max(1, Math.floor(parseDuration(j.jwks_retry ?? '30s', `${at}.jwks_retry`) / 1000)),
    algorithms,
    claims,
    policies,
  };
}

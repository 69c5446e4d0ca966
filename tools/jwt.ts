/** Mints JWTs with node:crypto for the JWT tests and the bench (every alg the gateway accepts). */
import { createHmac, generateKeyPairSync, KeyObject, sign, constants } from 'node:crypto';

export type Alg = 'HS256' | 'HS384' | 'HS512' | 'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512' | 'ES256' | 'ES384' | 'ES512';
export const ASYMMETRIC: Alg[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'];

export const b64u = (v: string | Buffer): string => Buffer.from(v).toString('base64url');

export interface KeyPair { kid: string; alg: Alg; privateKey: KeyObject; publicKey: KeyObject }

const CURVE: Record<string, string> = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' };

export function keyPair(alg: Alg, kid: string): KeyPair {
  const k = alg.startsWith('ES') ? generateKeyPairSync('ec', { namedCurve: CURVE[alg] }) : generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { kid, alg, privateKey: k.privateKey, publicKey: k.publicKey };
}

/** The public JWK of a pair, as a provider publishes it. */
export function publicJwk(p: KeyPair): Record<string, unknown> {
  return { ...(p.publicKey.export({ format: 'jwk' }) as Record<string, unknown>), kid: p.kid, alg: p.alg, use: 'sig' };
}

/** Signs header.payload; `key` is the HMAC secret for HS*, a key pair otherwise. */
export function signJwt(header: Record<string, unknown>, claims: Record<string, unknown>, key: string | Buffer | KeyPair): string {
  const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(claims))}`;
  const alg = String(header.alg);
  const bits = alg.slice(2);
  let sig: Buffer;
  if (typeof key === 'string' || Buffer.isBuffer(key)) sig = createHmac(`sha${bits}`, key).update(input).digest();
  else if (alg.startsWith('ES')) sig = sign(`sha${bits}`, Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
  else if (alg.startsWith('PS')) sig = sign(`sha${bits}`, Buffer.from(input), { key: key.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: Number(bits) / 8 });
  else sig = sign(`sha${bits}`, Buffer.from(input), key.privateKey);
  return `${input}.${b64u(sig)}`;
}

/** A token for `key` with sane defaults: exp in an hour, iat now, the given claims on top. */
export function mint(alg: Alg, key: string | KeyPair, claims: Record<string, unknown>, header: Record<string, unknown> = {}): string {
  const now = Math.floor(Date.now() / 1000);
  const kid = typeof key === 'string' ? {} : { kid: key.kid };
  return signJwt({ alg, typ: 'JWT', ...kid, ...header }, { iat: now, exp: now + 3600, ...claims }, key);
}

/** Request builders and fetch helpers shared by the integration tests and the benchmarks. */
import { createHash } from 'node:crypto';
import { request } from 'node:http';

export const OCR = 'nanonets/Nanonets-OCR2-3B';
export const CHAT = 'Qwen/Qwen2.5-1.5B-Instruct';
export const EMBED = 'BAAI/bge-m3';
export const WHISPER = 'openai/whisper-small';

export function sha256(b: Buffer | string): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Deterministic pseudo-random bytes (xorshift), so OCR payloads are the same in every run. */
export function pseudoRandomBytes(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

/** An OpenAI vision chat body with a base64 "image" of about `imageBytes` raw bytes. */
export function ocrBody(model: string, imageBytes: number, opts: { modelLast?: boolean; seed?: number } = {}): string {
  const img = pseudoRandomBytes(imageBytes, opts.seed ?? 7).toString('base64');
  const messages = [{ role: 'user', content: [
    { type: 'text', text: 'Extract the text from this page as markdown.' },
    { type: 'image_url', image_url: { url: `data:image/png;base64,${img}` } },
  ] }];
  return opts.modelLast ? JSON.stringify({ messages, max_tokens: 512, model }) : JSON.stringify({ model, messages, max_tokens: 512 });
}

export function chatBody(model: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ model, messages: [{ role: 'user', content: 'Say hello.' }], ...extra });
}

export async function post(url: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: 'POST', body: body as BodyInit, headers: { 'content-type': 'application/json', ...headers } });
}

/**
 * Sends only the headers and the first bytes of a body announced as `announcedBytes` long, and
 * resolves with the answer nginx gives without waiting for the rest: proves a refusal happens
 * before the body is read.
 */
export function postHeadersOnly(url: string, announcedBytes: number, firstBytes: string): Promise<{ code: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'content-length': String(announcedBytes), 'content-type': 'application/json' } }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        req.destroy();
        resolve({ code: res.statusCode ?? 0, body });
      });
    });
    req.on('error', reject);
    req.write(firstBytes);
  });
}

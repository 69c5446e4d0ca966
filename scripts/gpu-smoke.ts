/**
 * GPU smoke test of the OCR path: one page image through the running gateway to the OCR model, and
 * the answer checked for real text. Run it after any change of the vLLM image or a model revision
 * (docs/deployment.md): some vLLM releases decode Qwen2.5-VL models (Nanonets-OCR2-3B) into a
 * stream of "!" or a loop while still answering 200, which no healthcheck sees.
 *
 *   npx tsx scripts/gpu-smoke.ts [--url http://127.0.0.1:8080] [--key sk-...] [--model ocr] [--image page.png]
 *
 * Without --image it renders its own page (an invoice in a plain bitmap font; no dependency) and
 * also checks that most of its words come back. The key comes from --key, GW_API_KEY or
 * compose/secrets/dev_api_key. Exit codes: 0 the model read the page; 1 it did not (the reasons are
 * printed); 2 refused: no gateway answers, or the OCR backend is the CPU dev stack's mock.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { grayPng } from '../bench/png';
import { projectRoot } from '../tools/config';

// ---------------------------------------------------------------------------------------------
// The page: a grayscale PNG drawn with a 5x7 bitmap font.

/** 5x7 glyphs, one string of 35 bits (row by row) per character. */
const FONT: Record<string, string> = {
  A: '01110100011000111111100011000110001', B: '11110100011000111110100011000111110',
  C: '01110100011000010000100001000101110', D: '11110100011000110001100011000111110',
  E: '11111100001000011110100001000011111', F: '11111100001000011110100001000010000',
  G: '01110100011000010111100011000101111', H: '10001100011000111111100011000110001',
  I: '01110001000010000100001000010001110', J: '00111000100001000010000101001001100',
  K: '10001100101010011000101001001010001', L: '10000100001000010000100001000011111',
  M: '10001110111010110101100011000110001', N: '10001100011100110101100111000110001',
  O: '01110100011000110001100011000101110', P: '11110100011000111110100001000010000',
  Q: '01110100011000110001101011001001101', R: '11110100011000111110101001001010001',
  S: '01111100001000001110000010000111110', T: '11111001000010000100001000010000100',
  U: '10001100011000110001100011000101110', V: '10001100011000110001100010101000100',
  W: '10001100011000110101101011010101010', X: '10001100010101000100010101000110001',
  Y: '10001100010101000100001000010000100', Z: '11111000010001000100010001000011111',
  0: '01110100011001110101110011000101110', 1: '00100011000010000100001000010001110',
  2: '01110100010000100010001000100011111', 3: '11111000100010000010000011000101110',
  4: '00010001100101010010111110001000010', 5: '11111100001111000001000011000101110',
  6: '00110010001000011110100011000101110', 7: '11111000010001000100010000100001000',
  8: '01110100011000101110100011000101110', 9: '01110100011000101111000010001001100',
  '.': '00000000000000000000000000110001100', ',': '00000000000000000000011000010001000',
  ':': '00000011000110000000011000110000000', '-': '00000000000000011111000000000000000',
  '/': '00001000010001000100010001000010000', ' ': '0'.repeat(35),
};

/** What the built-in page says, line by line. */
export const PAGE_LINES = [
  'INVOICE NO. 2026-0418',
  'DATE: 12 MARCH 2026',
  'BILL TO: NORTHWIND TRADING',
  'ITEM          QTY     PRICE',
  'PAPER A4       10     45.00',
  'TONER CYAN      2     89.50',
  'STAPLES BOX     5      4.80',
  'TOTAL DUE:           139.30',
  'PAYMENT WITHIN 30 DAYS',
  'THANK YOU FOR YOUR BUSINESS',
];

/** Renders `lines` black on white, `scale` pixels per font dot, as an 8-bit grayscale PNG. */
export function renderPagePng(lines: string[], scale = 4): { png: Buffer; width: number; height: number } {
  const cw = 6 * scale;
  const lh = 11 * scale;
  const margin = 12 * scale;
  const width = margin * 2 + cw * Math.max(...lines.map((l) => l.length));
  const height = margin * 2 + lh * lines.length;
  const px = Buffer.alloc(width * height, 255);
  lines.forEach((line, row) => {
    [...line.toUpperCase()].forEach((ch, col) => {
      const g = FONT[ch];
      if (!g) throw new Error(`gpu-smoke: no glyph for "${ch}"`);
      for (let i = 0; i < 35; i++) {
        if (g[i] !== '1') continue;
        const x0 = margin + col * cw + (i % 5) * scale;
        const y0 = margin + row * lh + Math.floor(i / 5) * scale;
        for (let y = y0; y < y0 + scale; y++) px.fill(0, y * width + x0, y * width + x0 + scale);
      }
    });
  });
  const raw = Buffer.alloc((width + 1) * height);
  for (let y = 0; y < height; y++) px.copy(raw, y * (width + 1) + 1, y * width, (y + 1) * width); // filter byte 0 per row
  const png = grayPng(raw, width, height);
  return { png, width, height };
}

// ---------------------------------------------------------------------------------------------
// The verdict on the model's answer.

export interface Verdict { ok: boolean; problems: string[]; found?: number; expected?: number }

/**
 * Real text, or the failure modes of a broken model/engine pairing: empty, one character repeated
 * ("!!!!", token id 0 after NaN logits), a loop of one short phrase, cut off at max_tokens. With
 * `expectedWords`, at least `minShare` of them must appear (case and punctuation ignored).
 */
export function judgeOcr(text: string, finishReason: string | null | undefined, expectedWords?: string[], minShare = 0.6): Verdict {
  const problems: string[] = [];
  const t = text.trim();
  const visible = t.replace(/\s+/g, '');
  if (visible.length < 20) problems.push(`only ${visible.length} visible characters`);
  if (visible.length > 0) {
    const counts: Record<string, number> = {};
    for (const ch of visible) counts[ch] = (counts[ch] ?? 0) + 1;
    const [top, n] = Object.entries(counts).sort((a, b) => b[1] - a[1])[0];
    if (n / visible.length > 0.3) problems.push(`"${top}" is ${Math.round((100 * n) / visible.length)}% of the characters`);
  }
  const run = /(.)\1{19,}/su.exec(t);
  if (run && !/[-=_.\s|]/.test(run[1])) problems.push(`"${run[1]}" repeated ${run[0].length} times in a row`);
  const words = t.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
  const distinct = new Set(words);
  if (words.length < 8 || distinct.size < 6) problems.push(`${words.length} words, ${distinct.size} distinct`);
  else if (words.length >= 40 && distinct.size / words.length < 0.15) problems.push(`a loop: ${distinct.size} distinct words in ${words.length}`);
  if (finishReason && finishReason !== 'stop') problems.push(`finish_reason "${finishReason}" (a degenerate answer runs to max_tokens)`);
  const v: Verdict = { ok: false, problems };
  if (expectedWords) {
    const want = [...new Set(expectedWords.map((w) => w.toLowerCase()))];
    const got = new Set(words);
    // The model may keep 45.00 as one token or split it: compare on the alphanumeric parts.
    const found = want.filter((w) => (w.match(/[\p{L}\p{N}]+/gu) ?? []).every((p) => got.has(p))).length;
    v.found = found;
    v.expected = want.length;
    if (found / want.length < minShare) problems.push(`only ${found} of the page's ${want.length} words came back (at least ${Math.ceil(minShare * want.length)} expected)`);
  }
  v.ok = problems.length === 0;
  return v;
}

/** The page's words worth finding: letters and numbers of 2+ characters. */
export function pageWords(lines = PAGE_LINES): string[] {
  return lines.join(' ').split(/\s+/).map((w) => w.replace(/^[^\w]+|[^\w]+$/g, '')).filter((w) => w.length >= 2);
}

// ---------------------------------------------------------------------------------------------

function opt(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
}

function refuse(msg: string): never {
  console.error(`gpu-smoke: refused: ${msg}`);
  process.exit(2);
}

function defaultModel(): string {
  const raw = JSON.parse(readFileSync(join(projectRoot, 'compose/gateway.json'), 'utf8')) as { models: Record<string, { capabilities?: string[]; aliases?: string[] }> };
  const hit = Object.entries(raw.models).find(([, m]) => (m.capabilities ?? []).includes('vision'));
  if (!hit) refuse('compose/gateway.json has no model with the "vision" capability; pass --model');
  return hit[0];
}

async function main(argv: string[]): Promise<void> {
  const url = (opt(argv, 'url') ?? process.env.GW_URL ?? `http://127.0.0.1:${process.env.GW_PORT ?? '8080'}`).replace(/\/$/, '');
  const keyFile = join(process.env.GW_SECRETS_DIR ?? join(projectRoot, 'compose/secrets'), 'dev_api_key');
  const key = opt(argv, 'key') ?? process.env.GW_API_KEY ?? (existsSync(keyFile) ? readFileSync(keyFile, 'utf8').trim() : '');
  if (!key) refuse(`no API key: pass --key, set GW_API_KEY, or run \`npm run compose:secrets\` (${keyFile})`);
  const model = opt(argv, 'model') ?? defaultModel();
  const imagePath = opt(argv, 'image');
  const timeoutMs = Number(opt(argv, 'timeout') ?? 300) * 1000;

  try {
    const h = await fetch(`${url}/health`, { signal: AbortSignal.timeout(5000) });
    if (!h.ok) refuse(`${url}/health answered ${h.status}: is the GPU stack up? (docker compose -f compose/gpu.yml ps)`);
  } catch (e) {
    refuse(`no gateway answers at ${url} (${(e as Error).message}): bring up the GPU stack first (docs/deployment.md), or pass --url`);
  }

  const png = imagePath ? readFileSync(imagePath) : renderPagePng(PAGE_LINES).png;
  const mime = imagePath && /\.jpe?g$/i.test(imagePath) ? 'image/jpeg' : 'image/png';
  const body = {
    model,
    temperature: 0,
    max_tokens: 2048,
    messages: [{
      role: 'user',
      content: [
        // data: URLs only: the model servers sit on an internal network and cannot fetch http URLs.
        { type: 'image_url', image_url: { url: `data:${mime};base64,${png.toString('base64')}` } },
        { type: 'text', text: 'Extract the text from the above document as if you were reading it naturally.' },
      ],
    }],
  };
  const started = Date.now();
  let res: Response;
  try {
    res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (e) {
    console.error(`gpu-smoke: FAIL: the request did not complete: ${(e as Error).message}`);
    process.exit(1);
  }
  if (res.headers.get('x-mock-backend')) {
    refuse(`the OCR backend at ${url} is the CPU dev stack's mock (x-mock-backend: ${res.headers.get('x-mock-backend')}), not a GPU model server: run this against compose/gpu.yml`);
  }
  const text = await res.text();
  if (res.status !== 200) {
    console.error(`gpu-smoke: FAIL: HTTP ${res.status}: ${text.slice(0, 500)}`);
    process.exit(1);
  }
  let answer = '';
  let finish: string | null = null;
  try {
    const j = JSON.parse(text);
    answer = String(j.choices?.[0]?.message?.content ?? '');
    finish = j.choices?.[0]?.finish_reason ?? null;
  } catch {
    console.error(`gpu-smoke: FAIL: not JSON: ${text.slice(0, 200)}`);
    process.exit(1);
  }
  const v = judgeOcr(answer, finish, imagePath ? undefined : pageWords());
  console.log(`gpu-smoke: ${model} via ${url}: ${answer.length} characters, finish_reason ${finish}, ${((Date.now() - started) / 1000).toFixed(1)} s` +
    (v.expected ? `, ${v.found}/${v.expected} of the page's words` : ''));
  console.log(`--- answer (first 600 characters) ---\n${answer.slice(0, 600)}\n---`);
  if (!v.ok) {
    console.error(`gpu-smoke: FAIL: ${v.problems.join('; ')}. Keep the previous image tag (docs/deployment.md).`);
    process.exit(1);
  }
  console.log('gpu-smoke: OK: the OCR model read the page');
}

if (process.argv[1] && /gpu-smoke\.[cm]?[jt]s$/.test(process.argv[1])) {
  main(process.argv.slice(2)).catch((e) => {
    console.error(`gpu-smoke: FAIL: ${(e as Error).stack ?? e}`);
    process.exit(1);
  });
}

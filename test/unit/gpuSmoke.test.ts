/**
 * scripts/gpu-smoke.ts without a GPU: the page it sends is a valid PNG that shows its text, the
 * verdict tells real OCR text from the ways a broken vLLM/model pairing answers, and the script
 * refuses (exit 2, with the reason) when no GPU stack answers.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { crc32 } from '../../bench/png';
import { judgeOcr, PAGE_LINES, pageWords, renderPagePng } from '../../scripts/gpu-smoke';
import { projectRoot } from '../../tools/config';

/** Parses our PNG back: chunks with their CRCs, then the pixel rows. */
function decode(png: Buffer): { width: number; height: number; px: Buffer } {
  expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  let off = 8;
  let width = 0;
  let height = 0;
  const idat: Buffer[] = [];
  const types: string[] = [];
  while (off < png.length) {
    const len = png.readUInt32BE(off);
    const type = png.toString('ascii', off + 4, off + 8);
    const data = png.subarray(off + 8, off + 8 + len);
    expect(png.readUInt32BE(off + 8 + len), `${type} CRC`).toBe(crc32(png.subarray(off + 4, off + 8 + len)));
    types.push(type);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      expect([data[8], data[9]]).toEqual([8, 0]);
    }
    if (type === 'IDAT') idat.push(data);
    off += 12 + len;
  }
  expect(types).toEqual(['IHDR', 'IDAT', 'IEND']);
  const raw = inflateSync(Buffer.concat(idat));
  expect(raw.length).toBe((width + 1) * height);
  const px = Buffer.alloc(width * height);
  for (let y = 0; y < height; y++) {
    expect(raw[y * (width + 1)], 'filter byte').toBe(0);
    raw.copy(px, y * width, y * (width + 1) + 1, (y + 1) * (width + 1));
  }
  return { width, height, px };
}

describe('gpu-smoke page', () => {
  it('is a valid grayscale PNG with the text drawn where the font puts it', () => {
    const { png, width, height } = renderPagePng(['I'], 2);
    const d = decode(png);
    expect([d.width, d.height]).toEqual([width, height]);
    // "I" is 01110/00100/...: with scale 2 and margin 24, its top bar covers x 26..31 on rows 24..25.
    const at = (x: number, y: number) => d.px[y * d.width + x];
    expect(at(26, 24)).toBe(0);
    expect(at(31, 25)).toBe(0);
    expect(at(24, 24)).toBe(255);
    // Row 1 of "I" is 00100: the stem at x 28..29 (y 26..27), white either side.
    expect(at(26, 27)).toBe(255);
    expect(at(28, 27)).toBe(0);
    expect(at(29, 26)).toBe(0);
    expect(at(30, 27)).toBe(255);
    expect(d.px.filter((v) => v === 0).length).toBe((3 + 1 * 5 + 3) * 4);
  });

  it('draws every line of the built-in page (and refuses a character it has no glyph for)', () => {
    const { png } = renderPagePng(PAGE_LINES);
    const d = decode(png);
    const dark = d.px.filter((v) => v === 0).length;
    expect(dark).toBeGreaterThan(1000);
    expect(dark / d.px.length).toBeLessThan(0.3);
    expect(() => renderPagePng(['€'])).toThrow(/no glyph/);
    expect(pageWords()).toEqual(expect.arrayContaining(['INVOICE', '2026-0418', 'NORTHWIND', '139.30']));
  });
});

describe('gpu-smoke verdict', () => {
  const words = pageWords();
  it('accepts the page read back, with line breaks, case and markdown changed', () => {
    const md = `| Item | Qty | Price |\n|---|---|---|\n${PAGE_LINES.join('\n').toLowerCase()}`;
    expect(judgeOcr(md, 'stop', words)).toMatchObject({ ok: true, found: words.length });
    expect(judgeOcr('The quick brown fox jumps over the lazy dog near the river bank.', 'stop').ok).toBe(true);
  });

  it.each([
    ['a stream of "!" (token id 0 after NaN logits)', '!'.repeat(2048), 'length', /"!" is 100%/],
    ['an empty answer', '', 'stop', /only 0 visible/],
    ['one phrase in a loop', 'total due total due '.repeat(60), 'length', /a loop|finish_reason/],
    ['fluent text that is not the page', 'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.', 'stop', /of the page's \d+ words came back/],
    ['the page cut off at max_tokens', PAGE_LINES.join('\n'), 'length', /finish_reason "length"/],
  ])('rejects %s', (_name, text, finish, re) => {
    const v = judgeOcr(text, finish, words);
    expect(v.ok).toBe(false);
    expect(v.problems.join('; ')).toMatch(re);
  });
});

describe('gpu-smoke without a GPU stack', () => {
  it('refuses with exit 2 and the reason when no gateway answers', () => {
    const out = spawnSync(process.execPath, ['--import', 'tsx', join(projectRoot, 'scripts/gpu-smoke.ts'), '--url', 'http://127.0.0.1:9', '--key', 'sk-x'], { encoding: 'utf8', timeout: 60_000 });
    expect(out.status, out.stderr).toBe(2);
    expect(out.stderr).toMatch(/refused: no gateway answers at http:\/\/127\.0\.0\.1:9 .*bring up the GPU stack/);
  });
});

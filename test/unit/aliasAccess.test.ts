// README "Try it": a key limited to an alias may call only that alias; the canonical name allows both.
import { describe, expect, it } from 'vitest';
import { modelAllowed } from '../../njs/src/core/access';

describe('a key that lists an alias', () => {
  it('may call the alias but not the canonical name it stands for', () => {
    expect(modelAllowed('["ocr"]', 'nanonets/Nanonets-OCR2-3B', 'ocr')).toBe(true);
    expect(modelAllowed('["ocr"]', 'nanonets/Nanonets-OCR2-3B', 'nanonets/Nanonets-OCR2-3B')).toBe(false);
  });
  it('listing the canonical name allows it and every alias', () => {
    expect(modelAllowed('["nanonets/Nanonets-OCR2-3B"]', 'nanonets/Nanonets-OCR2-3B', 'nanonets/Nanonets-OCR2-3B')).toBe(true);
    expect(modelAllowed('["nanonets/Nanonets-OCR2-3B"]', 'nanonets/Nanonets-OCR2-3B', 'ocr')).toBe(true);
  });
});

/**
 * A deterministic, valid grayscale PNG of roughly `bytes` bytes that looks like a scanned page (light
 * paper noise, dark word-shaped blocks on text lines). The mock backends take any base64, but a real
 * vision model rejects bytes that are not an image, so the real-target scenario sends this instead of
 * clients.ts's pseudo-random "image".
 */
import { deflateSync } from 'node:zlib';
import { pseudoRandomBytes } from '../tools/clients';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(b: Buffer): number {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

export function pagePng(bytes: number, seed = 11): Buffer {
  const width = 1024;
  // Paper noise in 200..255 compresses to roughly 0.8 byte per pixel.
  const height = Math.max(64, Math.ceil(bytes / (width * 0.8)));
  const noise = pseudoRandomBytes(width * height, seed);
  const raw = Buffer.alloc((width + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (width + 1)] = 0; // filter: none
    const line = Math.floor(y / 32), inLine = y % 32;
    for (let x = 0; x < width; x++) {
      let v = 200 + (noise[y * width + x] % 56);
      // "Words": 14 px high blocks on every text line, 40-120 px wide with gaps, inside the margins.
      if (inLine >= 9 && inLine < 23 && x > 60 && x < width - 60) {
        const word = noise[(line * 131 + Math.floor(x / 16)) % noise.length];
        if (word % 5 !== 0 && (x % 96) < 80) v = 20 + (noise[y * width + x] % 40);
      }
      raw[y * (width + 1) + 1 + x] = v;
    }
  }
  return grayPng(raw, width, height, 6);
}

/**
 * An 8-bit grayscale PNG of `raw`: `height` scanlines of `width` bytes, each after its filter byte.
 */
export function grayPng(raw: Buffer, width: number, height: number, level?: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // grayscale
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw, level === undefined ? {} : { level })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** An OpenAI vision chat body carrying a real PNG page (for real backends). */
export function ocrPngBody(model: string, imageBytes: number): string {
  const img = pagePng(imageBytes).toString('base64');
  return JSON.stringify({
    messages: [{ role: 'user', content: [
      { type: 'text', text: 'Extract the text from this page as markdown.' },
      { type: 'image_url', image_url: { url: `data:image/png;base64,${img}` } },
    ] }],
    max_tokens: 512,
    model,
  });
}

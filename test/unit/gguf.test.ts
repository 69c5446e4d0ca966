/**
 * The GGUF writer (tools/gguf.ts) read back by an independent parser written from ggml's
 * GGUF specification (gguf.md in the ggml repository): header, every KV with its type, tensor
 * infos, alignment of the data section and of each tensor, and the tensor bytes themselves.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CHAT_TEMPLATE, GgmlType, GgufType, tinyLlamaFile, tinyLlamaGguf, toHalf, writeGguf } from '../../tools/gguf';

interface Parsed {
  version: number;
  kv: Record<string, { type: number; itemType?: number; value: unknown }>;
  kvOrder: string[];
  tensors: { name: string; dims: bigint[]; type: number; offset: bigint }[];
  dataStart: number;
  alignment: number;
}

function parse(b: Buffer): Parsed {
  let p = 0;
  const u32 = () => { const v = b.readUInt32LE(p); p += 4; return v; };
  const u64 = () => { const v = b.readBigUInt64LE(p); p += 8; return v; };
  const str = () => { const n = Number(u64()); const s = b.toString('utf8', p, p + n); p += n; return s; };
  const scalar = (t: number): unknown => {
    switch (t) {
      case 0: return b.readUInt8(p++);
      case 1: return b.readInt8(p++);
      case 2: p += 2; return b.readUInt16LE(p - 2);
      case 3: p += 2; return b.readInt16LE(p - 2);
      case 4: return u32();
      case 5: p += 4; return b.readInt32LE(p - 4);
      case 6: p += 4; return b.readFloatLE(p - 4);
      case 7: { const v = b.readUInt8(p++); if (v > 1) throw new Error(`bool byte ${v}`); return v === 1; }
      case 8: return str();
      case 10: return u64();
      case 11: p += 8; return b.readBigInt64LE(p - 8);
      case 12: p += 8; return b.readDoubleLE(p - 8);
      default: throw new Error(`unknown type ${t} at ${p}`);
    }
  };
  if (b.toString('ascii', 0, 4) !== 'GGUF') throw new Error('bad magic');
  p = 4;
  const version = u32();
  const nTensors = Number(u64());
  const nKv = Number(u64());
  const kv: Parsed['kv'] = {};
  const kvOrder: string[] = [];
  for (let i = 0; i < nKv; i++) {
    const key = str();
    const type = u32();
    if (type === 9) {
      const itemType = u32();
      const n = Number(u64());
      const value = [];
      for (let j = 0; j < n; j++) value.push(scalar(itemType));
      kv[key] = { type, itemType, value };
    } else {
      kv[key] = { type, value: scalar(type) };
    }
    kvOrder.push(key);
  }
  const tensors: Parsed['tensors'] = [];
  for (let i = 0; i < nTensors; i++) {
    const name = str();
    const nd = u32();
    const dims = [];
    for (let j = 0; j < nd; j++) dims.push(u64());
    tensors.push({ name, dims, type: u32(), offset: u64() });
  }
  const alignment = kv['general.alignment'] ? Number(kv['general.alignment'].value) : 32;
  const dataStart = Math.ceil(p / alignment) * alignment;
  for (let i = p; i < dataStart; i++) if (b[i] !== 0) throw new Error(`padding byte ${i} is not 0`);
  return { version, kv, kvOrder, tensors, dataStart, alignment };
}

const nbytes = (t: Parsed['tensors'][number]) => Number(t.dims.reduce((a, d) => a * d, 1n)) * (t.type === 0 ? 4 : 2);

describe('GGUF writer', () => {
  it('writes every KV type and a tensor that the parser reads back exactly', () => {
    const data = new Float32Array([1, -2, 3.5, 0, 0.25, -0.125]);
    const b = writeGguf([
      { key: 'general.alignment', type: GgufType.UINT32, value: 64 },
      { key: 'u8', type: GgufType.UINT8, value: 200 },
      { key: 'i8', type: GgufType.INT8, value: -5 },
      { key: 'u16', type: GgufType.UINT16, value: 65000 },
      { key: 'i16', type: GgufType.INT16, value: -30000 },
      { key: 'i32', type: GgufType.INT32, value: -7 },
      { key: 'f32', type: GgufType.FLOAT32, value: 0.5 },
      { key: 'b', type: GgufType.BOOL, value: true },
      { key: 's', type: GgufType.STRING, value: 'héllo' },
      { key: 'u64', type: GgufType.UINT64, value: 2n ** 40n },
      { key: 'i64', type: GgufType.INT64, value: -(2n ** 40n) },
      { key: 'f64', type: GgufType.FLOAT64, value: 1e300 },
      { key: 'arr', type: GgufType.ARRAY, itemType: GgufType.STRING, value: ['a', '', 'ccc'] },
    ], [
      { name: 'w', dims: [3, 2], type: GgmlType.F32, data },
      { name: 'h', dims: [6], type: GgmlType.F16, data },
    ]);
    const g = parse(b);
    expect(g.version).toBe(3);
    expect(g.alignment).toBe(64);
    expect(g.kvOrder[0]).toBe('general.alignment');
    const vals = Object.fromEntries(Object.entries(g.kv).map(([k, v]) => [k, v.value]));
    expect(vals).toEqual({
      'general.alignment': 64, u8: 200, i8: -5, u16: 65000, i16: -30000, i32: -7, f32: 0.5, b: true, s: 'héllo',
      u64: 2n ** 40n, i64: -(2n ** 40n), f64: 1e300, arr: ['a', '', 'ccc'],
    });
    expect(g.kv.arr.itemType).toBe(GgufType.STRING);
    expect(g.tensors).toEqual([
      { name: 'w', dims: [3n, 2n], type: 0, offset: 0n },
      { name: 'h', dims: [6n], type: 1, offset: 64n },
    ]);
    expect(g.dataStart % 64).toBe(0);
    const w = b.subarray(g.dataStart, g.dataStart + 24);
    expect(Array.from(new Float32Array(w.buffer.slice(w.byteOffset, w.byteOffset + 24)))).toEqual(Array.from(data));
    const h = b.subarray(g.dataStart + 64, g.dataStart + 76);
    expect(Array.from({ length: 6 }, (_, i) => h.readUInt16LE(i * 2))).toEqual([0x3c00, 0xc000, 0x4300, 0, 0x3400, 0xb000]);
    // The file ends on an aligned boundary after the last tensor.
    expect(b.length).toBe(g.dataStart + 128);
  });

  it('converts to IEEE half precision like numpy (rounding, subnormals, overflow)', () => {
    expect(toHalf(1)).toBe(0x3c00);
    expect(toHalf(-0)).toBe(0x8000);
    expect(toHalf(65504)).toBe(0x7bff);
    expect(toHalf(70000)).toBe(0x7c00);
    expect(toHalf(Infinity)).toBe(0x7c00);
    expect(toHalf(NaN) & 0x7c00).toBe(0x7c00);
    expect(toHalf(2 ** -24)).toBe(0x0001);
    expect(toHalf(2 ** -26)).toBe(0);
    expect(toHalf(1 + 2 ** -11)).toBe(0x3c00); // tie → even
    expect(toHalf(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie → even (up)
    expect(toHalf(0.1)).toBe(0x2e66);
  });

  it('refuses a tensor whose data does not match its dims, and a bad alignment', () => {
    expect(() => writeGguf([], [{ name: 'x', dims: [2, 2], type: GgmlType.F32, data: new Float32Array(3) }])).toThrow(/3 values/);
    expect(() => writeGguf([{ key: 'general.alignment', type: GgufType.UINT32, value: 12 }], [])).toThrow(/alignment/);
  });
});

describe('tiny llama model', () => {
  it('has the llama hyperparameters, a byte vocabulary, a chat template and aligned tensors in order', () => {
    const b = tinyLlamaGguf({ seed: 1, kind: 'chat' });
    const g = parse(b);
    const v = (k: string) => g.kv[k]?.value;
    expect(v('general.architecture')).toBe('llama');
    expect(g.kv['general.architecture'].type).toBe(GgufType.STRING);
    for (const [k, want] of Object.entries({
      'llama.embedding_length': 64, 'llama.block_count': 2, 'llama.feed_forward_length': 256, 'llama.attention.head_count': 4,
      'llama.attention.head_count_kv': 4, 'llama.rope.dimension_count': 16, 'llama.context_length': 32768, 'llama.vocab_size': 259,
    })) {
      expect(v(k), k).toBe(want);
      expect(g.kv[k].type, k).toBe(GgufType.UINT32);
    }
    expect(v('llama.attention.layer_norm_rms_epsilon')).toBeCloseTo(1e-5, 10);
    expect(v('tokenizer.ggml.model')).toBe('llama');
    const tokens = v('tokenizer.ggml.tokens') as string[];
    expect(tokens).toHaveLength(259);
    expect(tokens.slice(0, 4)).toEqual(['<unk>', '<s>', '</s>', '<0x00>']);
    expect(tokens[3 + 0x41]).toBe('<0x41>');
    expect(tokens[258]).toBe('<0xFF>');
    expect(new Set(tokens).size).toBe(259);
    const types = v('tokenizer.ggml.token_type') as number[];
    expect(types.slice(0, 3)).toEqual([2, 3, 3]);
    expect(types.slice(3).every((t) => t === 6)).toBe(true);
    expect(g.kv['tokenizer.ggml.token_type'].itemType).toBe(GgufType.INT32);
    expect((v('tokenizer.ggml.scores') as number[])).toHaveLength(259);
    expect([v('tokenizer.ggml.bos_token_id'), v('tokenizer.ggml.eos_token_id'), v('tokenizer.ggml.unknown_token_id')]).toEqual([1, 2, 0]);
    expect(v('tokenizer.chat_template')).toBe(CHAT_TEMPLATE);
    expect(v('llama.pooling_type')).toBeUndefined();

    const names = g.tensors.map((t) => t.name);
    const layer = (n: number) => ['attn_norm', 'attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_norm', 'ffn_gate', 'ffn_up', 'ffn_down'].map((s) => `blk.${n}.${s}.weight`);
    expect(names).toEqual(['token_embd.weight', ...layer(0), ...layer(1), 'output_norm.weight', 'output.weight']);
    const t = (n: string) => g.tensors.find((x) => x.name === n)!;
    expect(t('token_embd.weight').dims).toEqual([64n, 259n]);
    expect(t('output.weight').dims).toEqual([64n, 259n]);
    expect(t('blk.1.ffn_down.weight').dims).toEqual([256n, 64n]);
    expect(t('blk.1.ffn_up.weight').dims).toEqual([64n, 256n]);
    expect(t('blk.0.attn_norm.weight').dims).toEqual([64n]);
    // Each tensor starts aligned, right after the previous one (plus padding); the last fills the file.
    let next = 0;
    for (const x of g.tensors) {
      expect(Number(x.offset) % g.alignment, x.name).toBe(0);
      expect(Number(x.offset), x.name).toBe(Math.ceil(next / g.alignment) * g.alignment);
      next = Number(x.offset) + nbytes(x);
    }
    expect(b.length).toBe(g.dataStart + Math.ceil(next / g.alignment) * g.alignment);
    // Norm weights are ones; the rest are small random numbers.
    const f32 = (x: Parsed['tensors'][number]) => new Float32Array(b.buffer.slice(b.byteOffset + g.dataStart + Number(x.offset), b.byteOffset + g.dataStart + Number(x.offset) + nbytes(x)));
    expect(Array.from(f32(t('output_norm.weight'))).every((x) => x === 1)).toBe(true);
    const q = f32(t('blk.0.attn_q.weight'));
    expect(Math.max(...Array.from(q).map(Math.abs))).toBeLessThanOrEqual(1 / 8);
    expect(new Set(q).size).toBeGreaterThan(q.length * 0.9);
  });

  it('is deterministic from its seed; seed, kind and tensor type change it', () => {
    const a = tinyLlamaGguf({ seed: 7, kind: 'chat' });
    expect(tinyLlamaGguf({ seed: 7, kind: 'chat' }).equals(a)).toBe(true);
    expect(tinyLlamaGguf({ seed: 8, kind: 'chat' }).equals(a)).toBe(false);
    const e = parse(tinyLlamaGguf({ seed: 7, kind: 'embedding' }));
    expect(e.kv['llama.pooling_type'].value).toBe(1);
    expect(e.kv['tokenizer.chat_template']).toBeUndefined();
    const h = tinyLlamaGguf({ seed: 7, kind: 'chat', tensorType: 'f16' });
    const hp = parse(h);
    expect(hp.tensors.find((t) => t.name === 'blk.0.attn_q.weight')!.type).toBe(GgmlType.F16);
    expect(hp.tensors.find((t) => t.name === 'blk.0.attn_norm.weight')!.type).toBe(GgmlType.F32);
    expect(hp.kv['general.file_type'].value).toBe(1);
    expect(h.length).toBeLessThan(a.length);
  });

  it('is cached by content hash: the same options give the same file, written once', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gguf-cache-'));
    try {
      const p1 = tinyLlamaFile({ seed: 3, kind: 'chat' }, dir);
      const p2 = tinyLlamaFile({ seed: 3, kind: 'chat' }, dir);
      const p3 = tinyLlamaFile({ seed: 4, kind: 'chat' }, dir);
      expect(p2).toBe(p1);
      expect(p3).not.toBe(p1);
      expect(readFileSync(p1).equals(tinyLlamaGguf({ seed: 3, kind: 'chat' }))).toBe(true);
      expect(readdirSync(dir).sort()).toEqual([p1, p3].map((p) => p.slice(dir.length + 1)).sort());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * Writes GGUF v3 files (ggml's model format) for the real-backend tier: no model can be downloaded
 * here, so the suite makes its own tiny llama with random weights. It generates gibberish, which is
 * all a protocol test needs, and loads in llama.cpp in milliseconds.
 *
 * Layout (ggml's GGUF specification, gguf.md in the ggml repository): "GGUF", u32 version, u64
 * tensor count, u64 KV count; the KVs (u64-length string key, u32 type, value; arrays carry an
 * element type and a u64 count); per tensor its name, u32 n_dims, u64 dims (ne[0], the
 * fastest-varying, first), u32 ggml type and a u64 offset into the data section; zero padding to
 * `general.alignment`; then each tensor's data at an aligned offset. Everything is little-endian.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const GGUF_MAGIC = 'GGUF';
export const GGUF_VERSION = 3;
export const DEFAULT_ALIGNMENT = 32;

export enum GgufType { UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7, STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12 }
export enum GgmlType { F32 = 0, F16 = 1 }

export type GgufScalar = number | bigint | boolean | string;
export type GgufKv =
  | { key: string; type: Exclude<GgufType, GgufType.ARRAY>; value: GgufScalar }
  | { key: string; type: GgufType.ARRAY; itemType: Exclude<GgufType, GgufType.ARRAY>; value: GgufScalar[] };

export interface GgufTensor {
  name: string;
  /** ne[0] first: a [rows=out, cols=in] weight matrix of ggml is dims [in, out]. */
  dims: number[];
  type: GgmlType;
  /** Row-major values, dims[0] fastest. */
  data: Float32Array;
}

/** Grows a byte buffer as values are appended. */
class Out {
  private buf = Buffer.alloc(1 << 16);
  length = 0;
  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = Buffer.alloc(size);
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }
  u8(v: number) { this.room(1); this.buf.writeUInt8(v, this.length); this.length += 1; }
  i8(v: number) { this.room(1); this.buf.writeInt8(v, this.length); this.length += 1; }
  u16(v: number) { this.room(2); this.buf.writeUInt16LE(v, this.length); this.length += 2; }
  i16(v: number) { this.room(2); this.buf.writeInt16LE(v, this.length); this.length += 2; }
  u32(v: number) { this.room(4); this.buf.writeUInt32LE(v, this.length); this.length += 4; }
  i32(v: number) { this.room(4); this.buf.writeInt32LE(v, this.length); this.length += 4; }
  f32(v: number) { this.room(4); this.buf.writeFloatLE(v, this.length); this.length += 4; }
  f64(v: number) { this.room(8); this.buf.writeDoubleLE(v, this.length); this.length += 8; }
  u64(v: number | bigint) { this.room(8); this.buf.writeBigUInt64LE(BigInt(v), this.length); this.length += 8; }
  i64(v: number | bigint) { this.room(8); this.buf.writeBigInt64LE(BigInt(v), this.length); this.length += 8; }
  bytes(b: Uint8Array) { this.room(b.length); this.buf.set(b, this.length); this.length += b.length; }
  str(s: string) { const b = Buffer.from(s, 'utf8'); this.u64(b.length); this.bytes(b); }
  padTo(alignment: number) { const pad = (alignment - (this.length % alignment)) % alignment; this.room(pad); this.length += pad; }
  done(): Buffer { return this.buf.subarray(0, this.length); }
}

function writeScalar(o: Out, type: GgufType, v: GgufScalar): void {
  switch (type) {
    case GgufType.UINT8: return o.u8(Number(v));
    case GgufType.INT8: return o.i8(Number(v));
    case GgufType.UINT16: return o.u16(Number(v));
    case GgufType.INT16: return o.i16(Number(v));
    case GgufType.UINT32: return o.u32(Number(v));
    case GgufType.INT32: return o.i32(Number(v));
    case GgufType.FLOAT32: return o.f32(Number(v));
    case GgufType.BOOL: return o.u8(v ? 1 : 0);
    case GgufType.STRING: return o.str(String(v));
    case GgufType.UINT64: return o.u64(v as number | bigint);
    case GgufType.INT64: return o.i64(v as number | bigint);
    case GgufType.FLOAT64: return o.f64(Number(v));
    default: throw new Error(`gguf: type ${type} is not a scalar type`);
  }
}

/** IEEE 754 binary16 from a float, round to nearest even (what numpy's astype(float16) does). */
export function toHalf(v: number): number {
  const f = new Float32Array([v]);
  const x = new Uint32Array(f.buffer)[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
  return sign | h;
}

function tensorBytes(t: GgufTensor): Buffer {
  const n = t.dims.reduce((a, b) => a * b, 1);
  if (t.data.length !== n) throw new Error(`gguf: tensor ${t.name} has ${t.data.length} values for dims ${t.dims.join('x')}`);
  if (t.type === GgmlType.F32) return Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const b = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) b.writeUInt16LE(toHalf(t.data[i]), i * 2);
  return b;
}

/** One GGUF v3 file. `general.alignment` among the KVs (a UINT32) sets the alignment, else 32. */
export function writeGguf(kvs: GgufKv[], tensors: GgufTensor[]): Buffer {
  const alignKv = kvs.find((k) => k.key === 'general.alignment');
  const alignment = alignKv ? Number(alignKv.value) : DEFAULT_ALIGNMENT;
  if (!Number.isInteger(alignment) || alignment <= 0 || alignment % 8 !== 0) throw new Error(`gguf: alignment ${alignment} must be a positive multiple of 8`);
  const o = new Out();
  o.bytes(Buffer.from(GGUF_MAGIC, 'ascii'));
  o.u32(GGUF_VERSION);
  o.u64(tensors.length);
  o.u64(kvs.length);
  for (const kv of kvs) {
    o.str(kv.key);
    o.u32(kv.type);
    if (kv.type === GgufType.ARRAY) {
      o.u32(kv.itemType);
      o.u64(kv.value.length);
      for (const v of kv.value) writeScalar(o, kv.itemType, v);
    } else {
      writeScalar(o, kv.type, kv.value);
    }
  }
  const datas = tensors.map(tensorBytes);
  let offset = 0;
  tensors.forEach((t, i) => {
    o.str(t.name);
    o.u32(t.dims.length);
    for (const d of t.dims) o.u64(d);
    o.u32(t.type);
    o.u64(offset);
    offset += datas[i].length;
    offset += (alignment - (offset % alignment)) % alignment;
  });
  o.padTo(alignment);
  for (const d of datas) {
    o.bytes(d);
    o.padTo(alignment);
  }
  return o.done();
}

/** mulberry32: a small seeded PRNG, so the same seed gives the same weights on every machine. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface TinyLlamaOptions {
  seed: number;
  /** 'chat' carries a chat template; 'embedding' declares mean pooling for `--embeddings`. */
  kind: 'chat' | 'embedding';
  /** Matrices in F32 (default) or F16; norms are always F32, as llama.cpp requires. */
  tensorType?: 'f32' | 'f16';
  nEmbd?: number;
  nLayer?: number;
  nHead?: number;
  nHeadKv?: number;
  nFf?: number;
  contextLength?: number;
}

/** ChatML-shaped; its markers are not vocabulary entries, so they tokenize to bytes like any text. */
export const CHAT_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** <unk>, <s>, </s>, then one token per byte "<0x00>".."<0xFF>": every UTF-8 text tokenizes. */
export function byteVocab(): { tokens: string[]; scores: number[]; types: number[] } {
  const tokens = ['<unk>', '<s>', '</s>'];
  // llama.cpp token types: 1 normal, 2 unknown, 3 control, 6 byte.
  const types = [2, 3, 3];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(6);
  }
  return { tokens, scores: tokens.map(() => 0), types };
}

export const BOS_ID = 1;
export const EOS_ID = 2;

/** A llama (arch "llama") with random weights, deterministic from the options. */
export function tinyLlamaGguf(opts: TinyLlamaOptions): Buffer {
  const nEmbd = opts.nEmbd ?? 64;
  const nLayer = opts.nLayer ?? 2;
  const nHead = opts.nHead ?? 4;
  const nHeadKv = opts.nHeadKv ?? nHead;
  const nFf = opts.nFf ?? 4 * nEmbd;
  // llama-server caps --ctx-size at the trained context: claim a long one so tests choose theirs.
  const ctx = opts.contextLength ?? 32768;
  if (nEmbd % nHead !== 0 || nHead % nHeadKv !== 0) throw new Error('gguf: nEmbd must divide by nHead, and nHead by nHeadKv');
  const headDim = nEmbd / nHead;
  const vocab = byteVocab();
  const nVocab = vocab.tokens.length;
  const mat = opts.tensorType === 'f16' ? GgmlType.F16 : GgmlType.F32;
  const u32 = (key: string, value: number): GgufKv => ({ key, type: GgufType.UINT32, value });
  const kvs: GgufKv[] = [
    { key: 'general.architecture', type: GgufType.STRING, value: 'llama' },
    { key: 'general.name', type: GgufType.STRING, value: `tiny-${opts.kind}-${opts.seed}` },
    u32('general.alignment', DEFAULT_ALIGNMENT),
    u32('general.file_type', mat === GgmlType.F16 ? 1 : 0),
    u32('llama.context_length', ctx),
    u32('llama.embedding_length', nEmbd),
    u32('llama.block_count', nLayer),
    u32('llama.feed_forward_length', nFf),
    u32('llama.attention.head_count', nHead),
    u32('llama.attention.head_count_kv', nHeadKv),
    u32('llama.rope.dimension_count', headDim),
    u32('llama.vocab_size', nVocab),
    { key: 'llama.rope.freq_base', type: GgufType.FLOAT32, value: 10000 },
    { key: 'llama.attention.layer_norm_rms_epsilon', type: GgufType.FLOAT32, value: 1e-5 },
    { key: 'tokenizer.ggml.model', type: GgufType.STRING, value: 'llama' },
    { key: 'tokenizer.ggml.tokens', type: GgufType.ARRAY, itemType: GgufType.STRING, value: vocab.tokens },
    { key: 'tokenizer.ggml.scores', type: GgufType.ARRAY, itemType: GgufType.FLOAT32, value: vocab.scores },
    { key: 'tokenizer.ggml.token_type', type: GgufType.ARRAY, itemType: GgufType.INT32, value: vocab.types },
    u32('tokenizer.ggml.unknown_token_id', 0),
    u32('tokenizer.ggml.bos_token_id', BOS_ID),
    u32('tokenizer.ggml.eos_token_id', EOS_ID),
    { key: 'tokenizer.ggml.add_bos_token', type: GgufType.BOOL, value: true },
    { key: 'tokenizer.ggml.add_eos_token', type: GgufType.BOOL, value: false },
  ];
  if (opts.kind === 'chat') kvs.push({ key: 'tokenizer.chat_template', type: GgufType.STRING, value: CHAT_TEMPLATE });
  // llama.cpp's pooling types: 0 none, 1 mean, 2 cls, 3 last.
  else kvs.push(u32('llama.pooling_type', 1));

  const rnd = prng(opts.seed);
  const scale = 1 / Math.sqrt(nEmbd);
  const random = (name: string, dims: number[]): GgufTensor => {
    const n = dims.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = (rnd() * 2 - 1) * scale;
    return { name, dims, type: mat, data };
  };
  const ones = (name: string): GgufTensor => ({ name, dims: [nEmbd], type: GgmlType.F32, data: new Float32Array(nEmbd).fill(1) });
  const tensors: GgufTensor[] = [random('token_embd.weight', [nEmbd, nVocab])];
  for (let l = 0; l < nLayer; l++) {
    const b = `blk.${l}`;
    tensors.push(
      ones(`${b}.attn_norm.weight`),
      random(`${b}.attn_q.weight`, [nEmbd, nEmbd]),
      random(`${b}.attn_k.weight`, [nEmbd, headDim * nHeadKv]),
      random(`${b}.attn_v.weight`, [nEmbd, headDim * nHeadKv]),
      random(`${b}.attn_output.weight`, [nEmbd, nEmbd]),
      ones(`${b}.ffn_norm.weight`),
      random(`${b}.ffn_gate.weight`, [nEmbd, nFf]),
      random(`${b}.ffn_up.weight`, [nEmbd, nFf]),
      random(`${b}.ffn_down.weight`, [nFf, nEmbd]),
    );
  }
  tensors.push(ones('output_norm.weight'), random('output.weight', [nEmbd, nVocab]));
  return writeGguf(kvs, tensors);
}

export function modelCacheDir(): string {
  return process.env.GW_MODEL_CACHE || join(homedir(), '.cache/njs-gateway/models');
}

/**
 * The model as a file named by its content hash, written once (temp file + rename, so a concurrent
 * writer or a reader never sees half a file). Returns the absolute path.
 */
export function tinyLlamaFile(opts: TinyLlamaOptions, dir: string = modelCacheDir()): string {
  const bytes = tinyLlamaGguf(opts);
  const hash = createHash('sha256').update(bytes).digest('hex').slice(0, 16);
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `tiny-llama-${opts.kind}-${hash}.gguf`);
  if (!existsSync(path)) {
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, bytes);
    renameSync(tmp, path);
  }
  return path;
}

/**
 * How the real-backend tier finds llama-server (tools/findLlama.ts), with stand-in
 * executables: a good one is taken with its version, a bad LLAMA_SERVER_BIN is an error that names
 * the fix, nothing at all is a reason (the tier's printed skip), and a server that dies at start
 * fails ready() with its own log.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

let dir = '';
const saved = { ...process.env };

function script(name: string, body: string): string {
  const p = join(dir, name);
  writeFileSync(p, `#!/bin/sh\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}

async function fresh(): Promise<typeof import('../../tools/findLlama')> {
  vi.resetModules(); // findLlama caches its answer per process
  return import('../../tools/findLlama');
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'find-llama-'));
  delete process.env.LLAMA_SERVER_BIN;
  process.env.GW_LLAMA_CACHE = join(dir, 'cache');
  process.env.PATH = dir; // nothing else on PATH: the host's own llama-server must not answer
});
afterEach(() => {
  process.env = { ...saved };
  rmSync(dir, { recursive: true, force: true });
});

describe('findLlama', () => {
  it('takes LLAMA_SERVER_BIN when its --version answers like llama-server', async () => {
    process.env.LLAMA_SERVER_BIN = script('good', 'echo "version: 1.2.3 (build 42, commit test)" >&2; echo "built with cc"');
    const { findLlama } = await fresh();
    expect(findLlama()).toEqual({ ok: true, rt: { bin: process.env.LLAMA_SERVER_BIN, version: '1.2.3 (build 42, commit test)', source: 'LLAMA_SERVER_BIN' } });
  });

  it('refuses a LLAMA_SERVER_BIN that fails, saying how to fix it, instead of falling back', async () => {
    process.env.LLAMA_SERVER_BIN = script('bad', 'echo "error while loading shared libraries: libllama.so.0" >&2; exit 127');
    const { findLlama } = await fresh();
    expect(() => findLlama()).toThrow(/LLAMA_SERVER_BIN is not usable: .*exit 127.*libllama\.so\.0.*unset it/);
  });

  it('finds llama-server on PATH', async () => {
    script('llama-server', 'echo "version: 9.9.9 (build 1, commit path)"');
    const { findLlama } = await fresh();
    expect(findLlama()).toMatchObject({ ok: true, rt: { source: 'PATH', version: '9.9.9 (build 1, commit path)' } });
  });

  it('answers with a reason, not an error, when there is nothing and provisioning is off', async () => {
    const { findLlama } = await fresh();
    const f = findLlama({ provision: false });
    expect(f.ok).toBe(false);
    expect(f.ok ? '' : f.reason).toMatch(/provisioning is off/);
  });

  it('ready() fails with the server\'s own log when it exits before answering', async () => {
    const { startLlamaServer } = await fresh();
    const bin = script('dies', 'echo "E llama_model_load: error loading model: tensor \'output.weight\' not found" >&2; exit 1');
    const s = startLlamaServer({ bin, version: 'x', source: 'PATH' }, { model: '/nope.gguf', port: 9, alias: 'm' });
    await expect(s.ready(5_000)).rejects.toThrow(/exit 1 before it was ready:[\s\S]*tensor 'output.weight' not found/);
    expect(s.exited()).toBe(true);
  });
});

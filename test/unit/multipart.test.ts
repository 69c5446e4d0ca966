import { describe, expect, it } from 'vitest';
import { multipartBoundary, scanMultipartModel } from '../../njs/src/core/multipart';
import { pseudoRandomBytes } from '../support/clients';

function form(boundary: string, parts: { name: string; value: Buffer | string; filename?: string }[]): Buffer {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"${p.filename ? `; filename="${p.filename}"\r\nContent-Type: audio/wav` : ''}\r\n\r\n`));
    chunks.push(Buffer.isBuffer(p.value) ? p.value : Buffer.from(p.value));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

describe('multipartBoundary', () => {
  it('parses plain and quoted boundaries', () => {
    expect(multipartBoundary('multipart/form-data; boundary=abc123')).toBe('abc123');
    expect(multipartBoundary('multipart/form-data; charset=utf-8; boundary="a b:c"')).toBe('a b:c');
    expect(multipartBoundary('Multipart/Form-Data;boundary=----WebKitFormBoundaryX')).toBe('----WebKitFormBoundaryX');
  });
  it('is null for other types', () => {
    expect(multipartBoundary('application/json')).toBeNull();
    expect(multipartBoundary(undefined)).toBeNull();
    expect(multipartBoundary('multipart/form-data')).toBeNull();
  });
});

describe('scanMultipartModel', () => {
  const audio = pseudoRandomBytes(300_000, 3);
  it('finds model after a binary file part', () => {
    const b = form('XyZ', [{ name: 'file', value: audio, filename: 'a.wav' }, { name: 'model', value: 'openai/whisper-small' }]);
    const r = scanMultipartModel(b, 'XyZ');
    expect(r).toMatchObject({ ok: true, model: 'openai/whisper-small' });
    if (r.ok) expect(b.subarray(r.start, r.end).toString()).toBe('openai/whisper-small');
  });
  it('finds model before the file and ignores filename="model"', () => {
    const b = form('b', [{ name: 'model', value: 'w1' }, { name: 'file', value: audio, filename: 'model' }, { name: 'language', value: 'en' }]);
    expect(scanMultipartModel(b, 'b')).toMatchObject({ ok: true, model: 'w1' });
  });
  it('does not take a boundary-like line inside the file as a part', () => {
    const tricky = Buffer.concat([audio.subarray(0, 1000), Buffer.from('\r\n--notit\r\n'), audio.subarray(1000, 2000)]);
    const b = form('real', [{ name: 'file', value: tricky, filename: 'x' }, { name: 'model', value: 'w2' }]);
    expect(scanMultipartModel(b, 'real')).toMatchObject({ ok: true, model: 'w2' });
  });
  it('reports missing and empty model', () => {
    expect(scanMultipartModel(form('b', [{ name: 'file', value: audio, filename: 'x' }]), 'b')).toMatchObject({ ok: false, error: 'missing_model' });
    expect(scanMultipartModel(form('b', [{ name: 'model', value: '' }]), 'b')).toMatchObject({ ok: false, error: 'invalid_model' });
  });
  it('rejects bodies without the boundary or a closing delimiter', () => {
    expect(scanMultipartModel(Buffer.from('hello'), 'b')).toMatchObject({ ok: false, error: 'invalid_multipart' });
    expect(scanMultipartModel(Buffer.from('--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nw'), 'b')).toMatchObject({ ok: false, error: 'invalid_multipart' });
  });
});

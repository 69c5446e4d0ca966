import { describe, expect, it } from 'vitest';
import { bodyKind, scanMultipartModel } from '../../njs/src/core/multipart';
import { pseudoRandomBytes } from '../../tools/clients';

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

const boundaryOf = (ct: string | undefined) => { const k = bodyKind(ct); return k.kind === 'multipart' ? k.boundary : k.kind; };

describe('bodyKind', () => {
  it('parses plain and quoted boundaries, parameter names case-insensitive, whitespace around "="', () => {
    expect(boundaryOf('multipart/form-data; boundary=abc123')).toBe('abc123');
    expect(boundaryOf('multipart/form-data; charset=utf-8; boundary="a b:c"')).toBe('a b:c');
    expect(boundaryOf('Multipart/Form-Data;boundary=----WebKitFormBoundaryX')).toBe('----WebKitFormBoundaryX');
    expect(boundaryOf('multipart/form-data; BOUNDARY = xyz')).toBe('xyz');
  });
  it('reads other types as JSON', () => {
    expect(boundaryOf('application/json')).toBe('json');
    expect(boundaryOf(undefined)).toBe('json');
    expect(boundaryOf('text/plain')).toBe('json');
  });
  it('refuses multipart-ish types it cannot read exactly (was: parsed as JSON)', () => {
    for (const ct of ['multipart/form-data', 'multipart/form-data; xboundary=X', 'multipart/form-data, boundary=X',
      'multipart/mixed; boundary=X', 'multipart/form-data; boundary=X; boundary=Y', 'multipart/form-data; boundary=',
      'multipart/form-data; boundary="unterminated', 'form-data; boundary=X', 'multipart/form-data; boundary=' + 'x'.repeat(71),
      'application/x-www-form-urlencoded']) {
      expect(boundaryOf(ct), ct).toBe('invalid');
    }
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
  it('finds the boundary line past near misses: runs of CR, a prefix of the delimiter, a delimiter cut at the end, a view into a larger buffer', () => {
    const near = Buffer.concat([Buffer.from('\r\r\r\n\r\n-\r\n--rea\r\n--reaX\r\n--re'), audio.subarray(0, 5000), Buffer.from('\r\n--rea')]);
    const b = form('real', [{ name: 'file', value: near, filename: 'x' }, { name: 'model', value: 'w3' }, { name: 'file2', value: Buffer.from('\r\n--real'.slice(0, 7)), filename: 'y' }]);
    const r = scanMultipartModel(b, 'real');
    expect(r).toMatchObject({ ok: true, model: 'w3' });
    if (r.ok) expect(b.subarray(r.start, r.end).toString()).toBe('w3');
    // The same body as a view into a larger buffer (njs hands the body over as one): same answer.
    const before = Buffer.from('\r\n--real\r\n');
    const big = Buffer.concat([before, b, Buffer.from('\r\n--real--\r\n')]);
    const view = big.subarray(before.length, before.length + b.length);
    expect(scanMultipartModel(view, 'real')).toMatchObject({ ok: true, model: 'w3' });
    // A body whose closing delimiter never comes is refused, however many near misses it holds.
    expect(scanMultipartModel(b.subarray(0, b.length - 12), 'real')).toMatchObject({ ok: false, error: 'invalid_multipart' });
  });
  it('reports missing and empty model', () => {
    expect(scanMultipartModel(form('b', [{ name: 'file', value: audio, filename: 'x' }]), 'b')).toMatchObject({ ok: false, error: 'missing_model' });
    expect(scanMultipartModel(form('b', [{ name: 'model', value: '' }]), 'b')).toMatchObject({ ok: false, error: 'invalid_model' });
  });
  const raw = (...parts: string[]) => Buffer.from(parts.join('\r\n'));
  it('reads name= as a token, with whitespace around "=", case-insensitive parameter names (was: not seen)', () => {
    for (const cd of ['form-data; name=model', 'form-data; name ="model"', 'form-data; NAME="model"', 'Form-Data;name = model']) {
      const b = raw('--b', `Content-Disposition: ${cd}`, '', 'w9', '--b--', '');
      expect(scanMultipartModel(b, 'b'), cd).toMatchObject({ ok: true, model: 'w9' });
    }
  });
  it('names parts by Content-Disposition only, and refuses name=model in another header (was: read from any header)', () => {
    const ok = raw('--b', 'Content-Disposition: form-data; name="file"; filename="a.wav"', 'Content-Type: audio/wav; name="a.wav"', '', 'x', '--b', 'Content-Disposition: form-data; name="model"', '', 'good', '--b--', '');
    expect(scanMultipartModel(ok, 'b')).toMatchObject({ ok: true, model: 'good' });
    const decoy = raw('--b', 'Content-Disposition: form-data; name="language"', 'X-Foo: a; name="model"', '', 'evil', '--b', 'Content-Disposition: form-data; name="model"', '', 'good', '--b--', '');
    expect(scanMultipartModel(decoy, 'b')).toMatchObject({ ok: false, error: 'invalid_multipart' });
  });
  it('refuses two model parts, however spelled (was: the last one)', () => {
    const b = raw('--b', 'Content-Disposition: form-data; name="model"', '', 'A', '--b', 'Content-Disposition: form-data; name=model', '', 'B', '--b--', '');
    expect(scanMultipartModel(b, 'b')).toMatchObject({ ok: false, error: 'invalid_model' });
  });
  it('refuses what parsers could read differently', () => {
    const bad = [
      raw('--b', 'Content-Disposition: form-data; name="model"', 'Content-Disposition: form-data; name="x"', '', 'A', '--b--', ''),
      raw('--b', 'Content-Disposition: form-data; name="x"; name="model"', '', 'A', '--b--', ''),
      raw('--b', 'Content-Disposition: form-data; name*=UTF-8\'\'model', '', 'A', '--b--', ''),
      raw('--b', 'Content-Disposition: form-data;', ' name="model"', '', 'A', '--b--', ''),
      raw('--b', 'X-Only: 1', '', 'A', '--b--', ''),
      raw('--b', 'Content-Disposition: attachment; name="model"', '', 'A', '--b--', ''),
      raw('--b', 'Content-Disposition: form-data; name="model"', 'Content-Transfer-Encoding: base64', '', 'QQ==', '--b--', ''),
      raw('preamble', '--b', 'Content-Disposition: form-data; name="model"', '', 'A', '--b--', ''),
      raw('--b ', 'Content-Disposition: form-data; name="model"', '', 'A', '--b--', ''),
    ];
    for (const b of bad) expect(scanMultipartModel(b, 'b'), b.toString()).toMatchObject({ ok: false });
  });
  it('refuses more parts than the backend would take (bounds the work on a body of tiny parts)', () => {
    const parts: string[] = [];
    for (let i = 0; i < 2001; i++) parts.push('--b', 'Content-Disposition: form-data; name="x"', '', 'v');
    expect(scanMultipartModel(raw(...parts, '--b', 'Content-Disposition: form-data; name="model"', '', 'A', '--b--', ''), 'b')).toMatchObject({ ok: false, error: 'invalid_multipart' });
    expect(scanMultipartModel(raw(...parts.slice(0, 4 * 1999), '--b', 'Content-Disposition: form-data; name="model"', '', 'A', '--b--', ''), 'b')).toMatchObject({ ok: true, model: 'A' });
  });
  it('does not trim the model: the backend reads the bytes as sent', () => {
    const b = raw('--b', 'Content-Disposition: form-data; name="model"', '', ' w1 ', '--b--', '');
    expect(scanMultipartModel(b, 'b')).toMatchObject({ ok: true, model: ' w1 ' });
  });
  it('rejects bodies without the boundary or a closing delimiter', () => {
    expect(scanMultipartModel(Buffer.from('hello'), 'b')).toMatchObject({ ok: false, error: 'invalid_multipart' });
    expect(scanMultipartModel(Buffer.from('--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nw'), 'b')).toMatchObject({ ok: false, error: 'invalid_multipart' });
  });
});

import { readFileSync } from 'node:fs';
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { CHAT, chatBody, EMBED, OCR, ocrBody, post, pseudoRandomBytes, sha256, WHISPER } from '../../tools/clients';
import { useGateway } from '../support/useGateway';

const gw = useGateway({
  backends: { be_ocr: {}, be_chat: {}, be_embed: {} },
  models: {
    [OCR]: { upstream: 'be_ocr', aliases: ['ocr'] },
    [CHAT]: { upstream: 'be_chat', aliases: ['chat-default'] },
    [EMBED]: { upstream: 'be_embed', capabilities: ['embeddings'] },
    [WHISPER]: { upstream: 'be_chat', aliases: ['whisper'], capabilities: ['audio'] },
  },
});

function multipart(model: string, file: Buffer): Buffer {
  const b = 'gwtestboundary42';
  return Buffer.concat([
    Buffer.from(`--${b}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\n`),
    file,
    Buffer.from(`\r\n--${b}\r\nContent-Disposition: form-data; name="model"\r\n\r\n${model}\r\n--${b}--\r\n`),
  ]);
}

function client(): OpenAI {
  return new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'unused', maxRetries: 0 });
}

describe('routing by model', () => {
  it('routes a chat completion through the openai SDK to the chat backend', async () => {
    const { data, response } = await client().chat.completions.create({ model: CHAT, messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    expect(response.headers.get('x-mock-backend')).toBe('be_chat');
    expect(data.model).toBe(CHAT);
    expect(data.choices[0].message.content).toContain('tok0');
  });

  it('routes embeddings to the embedding backend', async () => {
    const { data, response } = await client().embeddings.create({ model: EMBED, input: ['a', 'b'] }).withResponse();
    expect(response.headers.get('x-mock-backend')).toBe('be_embed');
    expect(data.data).toHaveLength(2);
  });

  it('forwards a 6 MB OCR body byte for byte to the OCR backend', async () => {
    const body = ocrBody(OCR, 4_500_000, { modelLast: true });
    expect(body.length).toBeGreaterThan(6_000_000);
    const res = await post(`${gw.url}/v1/chat/completions`, body);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-mock-backend')).toBe('be_ocr');
    expect(res.headers.get('x-body-sha256')).toBe(sha256(body));
  });

  it('re-sends a chunked upload whole', async () => {
    const body = ocrBody(OCR, 300_000);
    const stream = new ReadableStream({ start(c) { c.enqueue(Buffer.from(body.slice(0, 1000))); c.enqueue(Buffer.from(body.slice(1000))); c.close(); } });
    const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', body: stream, duplex: 'half', headers: { 'content-type': 'application/json' } } as RequestInit);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-body-sha256')).toBe(sha256(body));
  });

  it('rewrites an alias to the canonical model name the backend serves', async () => {
    const res = await post(`${gw.url}/v1/chat/completions`, chatBody('ocr'));
    expect(res.status).toBe(200);
    expect(res.headers.get('x-mock-backend')).toBe('be_ocr');
    expect(res.headers.get('x-mock-model')).toBe(OCR);
    expect(res.headers.get('x-body-sha256')).toBe(sha256(chatBody(OCR)));
  });

  it('rewrites an alias inside a multipart body without touching the binary file', async () => {
    const audio = pseudoRandomBytes(500_000, 11); // every byte value, invalid UTF-8 included
    const res = await fetch(`${gw.url}/v1/audio/transcriptions`, { method: 'POST', body: multipart('whisper', audio) as BodyInit,
      headers: { 'content-type': 'multipart/form-data; boundary=gwtestboundary42' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-mock-model')).toBe(WHISPER);
    expect(res.headers.get('x-body-sha256')).toBe(sha256(multipart(WHISPER, audio)));
  });

  it('rewrites an alias in a large JSON body (scanner path) byte for byte', async () => {
    const body = ocrBody('ocr', 400_000, { modelLast: true });
    const res = await post(`${gw.url}/v1/chat/completions`, body);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-mock-model')).toBe(OCR);
    expect(res.headers.get('x-body-sha256')).toBe(sha256(body.replace('"model":"ocr"', `"model":${JSON.stringify(OCR)}`)));
  });

  it('streams SSE chunk by chunk, not buffered to the end', async () => {
    const res = await post(`${gw.url}/v1/chat/completions`, chatBody(CHAT, { stream: true }), { 'x-mock-chunks': '4', 'x-mock-chunk-delay-ms': '250' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = res.body!.getReader();
    const arrivals: number[] = [];
    const t0 = Date.now();
    let text = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      arrivals.push(Date.now() - t0);
      text += Buffer.from(value).toString();
    }
    expect(text).toContain('data: [DONE]');
    // Four token chunks 250 ms apart: a buffering proxy would deliver everything in one read at the end.
    expect(arrivals.length).toBeGreaterThanOrEqual(3);
    expect(arrivals[arrivals.length - 1] - arrivals[0]).toBeGreaterThan(500);
  });

  it('streams through the openai SDK', async () => {
    const stream = await client().chat.completions.create({ model: CHAT, messages: [{ role: 'user', content: 'hi' }], stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    expect(text).toBe('tok0 tok1 tok2 ');
  });
});

describe('routing without the preloaded table (a routes.conf written by hand, no js_preload_object)', () => {
  const bare = useGateway({
    backends: { be_chat: {} },
    models: { [CHAT]: { upstream: 'be_chat', aliases: ['chat-default'] } },
    render: {
      // Inline routes.conf without its js_preload_object line: ngx/table.ts must build the table itself.
      patch: (conf) => conf.replace(/^(\s*)include (\S+\/routes\.conf);$/m, (_m, ind: string, path: string) => {
        const text = readFileSync(path, 'utf8');
        if (!/^js_preload_object gw_routes /m.test(text)) throw new Error('routes.conf has no js_preload_object line to take out');
        return text.replace(/^js_preload_object [^\n]*\n/m, '').split('\n').map((l) => ind + l).join('\n');
      }),
    },
  });

  it('still routes by model and rewrites aliases', async () => {
    expect(readFileSync(bare.nginx.confPath, 'utf8')).not.toContain('js_preload_object');
    const res = await post(`${bare.url}/v1/chat/completions`, chatBody('chat-default'));
    expect(res.status).toBe(200);
    expect(res.headers.get('x-mock-backend')).toBe('be_chat');
    expect(((await res.json()) as { model: string }).model).toBe(CHAT);
  });
});

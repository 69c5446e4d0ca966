/**
 * The openai SDK asks for `encoding_format: "base64"` unless told otherwise and decodes the answer
 * itself. Through the gateway (which forwards the body untouched) the vectors it hands back must be
 * the backend's, in both encodings.
 */
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { EMBED } from '../../tools/clients';
import { mockEmbedding } from '../../tools/mockVllm';
import { useGateway } from '../support/useGateway';

const gw = useGateway({
  backends: { be_embed: {} },
  models: { [EMBED]: { upstream: 'be_embed', capabilities: ['embeddings'] } },
});

function client(): OpenAI {
  return new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'unused', maxRetries: 0 });
}

function expectVector(got: number[], want: number[]): void {
  expect(got).toHaveLength(want.length);
  // float32 on the wire: equal to about 7 significant digits
  got.forEach((x, i) => {
    expect(x).toBeCloseTo(want[i], 6);
  });
}

describe('embeddings through the openai SDK', () => {
  it('decodes the default base64 encoding into the backend vectors', async () => {
    const { data, response } = await client().embeddings.create({ model: EMBED, input: ['a', 'b', 'c'] }).withResponse();
    expect(response.headers.get('x-mock-backend')).toBe('be_embed');
    expect(data.data.map((d) => d.index)).toEqual([0, 1, 2]);
    data.data.forEach((d, i) => {
      expectVector(d.embedding, mockEmbedding(i));
    });
  });

  it('asked for base64 on the wire, gets a base64 string of float32 values', async () => {
    const res = await fetch(`${gw.url}/v1/embeddings`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: EMBED, input: 'a', encoding_format: 'base64' }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { data: { embedding: unknown }[] };
    expect(typeof body.data[0].embedding).toBe('string');
    const buf = Buffer.from(body.data[0].embedding as string, 'base64');
    expect(buf.length).toBe(mockEmbedding(0).length * 4);
    expectVector(Array.from({ length: buf.length / 4 }, (_, i) => buf.readFloatLE(i * 4)), mockEmbedding(0));
  });

  it('returns plain float arrays when the SDK asks for encoding_format "float"', async () => {
    const data = await client().embeddings.create({ model: EMBED, input: 'a', encoding_format: 'float' });
    expect(data.data[0].embedding).toEqual(mockEmbedding(0));
  });
});

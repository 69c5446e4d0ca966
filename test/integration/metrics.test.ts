import { describe, expect, it } from 'vitest';
import { CHAT, chatBody, EMBED, post } from '../../tools/clients';
import { eventually } from '../support/eventually';
import { Exposition, histogram, parseExposition, sampleValue } from '../support/prometheus';
import { useGateway } from '../support/useGateway';

const gw = useGateway({
  backends: { be_chat: {}, be_embed: {} },
  models: { [CHAT]: { upstream: 'be_chat', aliases: ['chat'] }, [EMBED]: { upstream: 'be_embed', capabilities: ['embeddings'] } },
});

async function scrape(query = ''): Promise<Exposition & { text: string; res: Response }> {
  const res = await fetch(`${gw.url}/metrics${query}`);
  const text = await res.text();
  return { text, res, ...parseExposition(text) };
}

async function readSse(res: Response): Promise<{ prompt: number; completion: number }> {
  const text = await res.text();
  const usage = text.split('\n').filter((l) => l.startsWith('data: {')).map((l) => JSON.parse(l.slice(6))).find((c) => c.usage)?.usage;
  return { prompt: usage.prompt_tokens, completion: usage.completion_tokens };
}

describe('GET /metrics', () => {
  it('is valid Prometheus text before any request, with every family declared', async () => {
    const { res, fams } = await scrape();
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const names = fams.map((f) => f.name);
    for (const n of ['gw_requests_total', 'gw_request_duration_seconds', 'gw_upstream_response_duration_seconds',
      'gw_time_to_first_token_seconds', 'gw_queue_wait_seconds', 'gw_tokens_total', 'gw_inflight_requests',
      'gw_queued_requests', 'gw_backend_up', 'gw_model_up', 'gw_build_info']) expect(names).toContain(n);
    expect(sampleValue(fams, 'gw_inflight_requests', { model: CHAT })).toBe(0);
    expect(sampleValue(fams, 'gw_queued_requests', { model: EMBED })).toBe(0);
  });

  it('counts exactly the requests the test sent, by model, status class and key id', async () => {
    let chatPrompt = 0;
    let chatCompletion = 0;
    let embedPrompt = 0;
    for (let i = 0; i < 3; i++) {
      const r = await post(`${gw.url}/v1/chat/completions`, chatBody(i === 0 ? 'chat' : CHAT, { messages: [{ role: 'user', content: 'x'.repeat(40 * (i + 1)) }] }));
      expect(r.status).toBe(200);
      const u = (await r.json()).usage;
      chatPrompt += u.prompt_tokens;
      chatCompletion += u.completion_tokens;
    }
    const s = await post(`${gw.url}/v1/chat/completions`, chatBody(CHAT, { stream: true, stream_options: { include_usage: true } }));
    expect(s.status).toBe(200);
    const su = await readSse(s);
    chatPrompt += su.prompt;
    chatCompletion += su.completion;
    for (let i = 0; i < 2; i++) {
      const r = await post(`${gw.url}/v1/embeddings`, JSON.stringify({ model: EMBED, input: ['a', 'b'] }));
      expect(r.status).toBe(200);
      embedPrompt += (await r.json()).usage.prompt_tokens;
    }
    expect((await post(`${gw.url}/v1/chat/completions`, chatBody(CHAT), { 'x-mock-status': '500' })).status).toBe(500);
    for (let i = 0; i < 2; i++) expect((await post(`${gw.url}/v1/chat/completions`, chatBody('nope'))).status).toBe(404);
    // Not API requests: never counted.
    await fetch(`${gw.url}/v1/models`);
    await fetch(`${gw.url}/health`);
    await fetch(`${gw.url}/readyz`);

    await eventually(async () => {
      const e = await scrape();
      const fams = e.fams;
      const req = (model: string, cls: string) => sampleValue(fams, 'gw_requests_total', { model, status_class: cls, key_id: '' });
      expect(req(CHAT, '2xx')).toBe(4);
      expect(req(CHAT, '5xx')).toBe(1);
      expect(req(EMBED, '2xx')).toBe(2);
      expect(req('', '4xx')).toBe(2);
      expect(fams.find((f) => f.name === 'gw_requests_total')!.metrics).toHaveLength(4);

      expect(histogram(e, 'gw_request_duration_seconds', { model: CHAT })!.count).toBe(5);
      expect(histogram(e, 'gw_request_duration_seconds', { model: EMBED })!.count).toBe(2);
      expect(histogram(e, 'gw_request_duration_seconds', { model: '' })!.count).toBe(2);
      expect(histogram(e, 'gw_upstream_response_duration_seconds', { model: CHAT })!.count).toBe(5);
      expect(histogram(e, 'gw_upstream_header_duration_seconds', { model: EMBED })!.count).toBe(2);
      expect(histogram(e, 'gw_queue_wait_seconds', { model: CHAT })!.count).toBe(5);
      expect(histogram(e, 'gw_upstream_response_duration_seconds', { model: '' })).toBeUndefined();
      expect(histogram(e, 'gw_time_to_first_token_seconds', { model: CHAT })!.count).toBe(1);

      expect(sampleValue(fams, 'gw_tokens_total', { model: CHAT, type: 'prompt' })).toBe(chatPrompt);
      expect(sampleValue(fams, 'gw_tokens_total', { model: CHAT, type: 'completion' })).toBe(chatCompletion);
      expect(sampleValue(fams, 'gw_tokens_total', { model: EMBED, type: 'prompt' })).toBe(embedPrompt);
    });
  });

  it('exports backend health and model health from the active checks', async () => {
    await eventually(async () => {
      const { fams } = await scrape();
      for (const [up, mock] of Object.entries(gw.mocks)) {
        expect(sampleValue(fams, 'gw_backend_up', { upstream: up, server: `127.0.0.1:${mock.port}` })).toBe(1);
      }
      expect(sampleValue(fams, 'gw_model_up', { model: CHAT })).toBe(1);
      expect(sampleValue(fams, 'gw_health_check_timestamp_seconds', {})).toBeGreaterThan(Date.now() / 1000 - 60);
      expect(sampleValue(fams, 'gw_models_listing_age_seconds', { upstream: 'be_chat' })).toBeGreaterThanOrEqual(0);
    }, { timeoutMs: 15_000 });
  });

  it('?backends=1 appends the backends\' own metrics under gw_upstream and gw_server labels', async () => {
    const { fams, text } = await scrape('?backends=1');
    const running = fams.find((f) => f.name === 'vllm:num_requests_running')!;
    expect(running.metrics.map((m) => m.labels!.gw_upstream).sort()).toEqual(['be_chat', 'be_embed']);
    expect(running.metrics.find((m) => m.labels!.gw_upstream === 'be_chat')!.labels).toEqual({
      gw_upstream: 'be_chat', gw_server: `127.0.0.1:${gw.mocks.be_chat.port}`, model_name: CHAT,
    });
    // The gateway's own families come first and are still there.
    expect(text.indexOf('# TYPE gw_requests_total counter')).toBeLessThan(text.indexOf('vllm:'));
  });

  it('keeps counting across a reload (the zone survives HUP)', async () => {
    const before = sampleValue((await scrape()).fams, 'gw_requests_total', { model: EMBED, status_class: '2xx', key_id: '' }) ?? 0;
    await gw.nginx.reload();
    expect((await post(`${gw.url}/v1/embeddings`, JSON.stringify({ model: EMBED, input: 'a' }))).status).toBe(200);
    await eventually(async () => {
      expect(sampleValue((await scrape()).fams, 'gw_requests_total', { model: EMBED, status_class: '2xx', key_id: '' })).toBe(before + 1);
    });
  });
});

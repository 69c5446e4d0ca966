/**
 * Conformance checks for a running compose stack (compose/dev.yml): the same list runs against the
 * stack's config on a local nginx (test/integration/compose.test.ts) and, when a Docker engine
 * answers, against the real containers through the published port. Model names, aliases and backend
 * names come from compose/gateway.json, the stacks' source of truth.
 */
import OpenAI from 'openai';
import { expect } from 'vitest';
import { loadPlan } from '../../scripts/gen-compose';
import { chatBody, ocrBody, post, sha256 } from '../../tools/clients';
import { eventually } from './eventually';

export interface StackTarget {
  /** Base URL of the gateway's published port, e.g. http://127.0.0.1:18080 */
  url: string;
  /** A key from the stack's keys file (compose/secrets/dev_api_key). */
  apiKey: string;
  /** Admin API base URL and token, when the test can reach the admin port. */
  adminUrl?: string;
  adminToken?: string;
}

export interface StackCheck {
  name: string;
  /** Needs StackTarget.adminUrl (the admin port is the container's loopback only). */
  needsAdmin?: boolean;
  /** Needs ngx.fetch to resolve compose service names (Docker's DNS): only in real containers. */
  needsServiceDns?: boolean;
  run(t: StackTarget): Promise<void>;
}

const plan = loadPlan();
function modelOf(upstream: string): { name: string; alias: string } {
  const s = plan.servers.find((x) => x.upstream === upstream);
  if (!s) throw new Error(`compose/gateway.json has no upstream ${upstream}`);
  const alias = Object.entries(plan.cfg.aliases).find(([, m]) => m === s.model)?.[0] ?? s.model;
  return { name: s.model, alias };
}
const OCR = modelOf('be_ocr');
const CHAT = modelOf('be_chat');
const EMBED = modelOf('be_embed');

const auth = (t: StackTarget) => ({ authorization: `Bearer ${t.apiKey}` });

export const stackChecks: StackCheck[] = [
  {
    name: 'answers GET /health, the gateway container\'s healthcheck, without a key',
    async run(t) {
      const res = await fetch(`${t.url}/health`);
      expect(res.status).toBe(200);
    },
  },
  {
    name: 'refuses a request without an API key with an OpenAI-shaped 401',
    async run(t) {
      const res = await post(`${t.url}/v1/chat/completions`, chatBody(CHAT.name));
      expect(res.status).toBe(401);
      expect((await res.json()).error).toMatchObject({ type: 'authentication_error', code: 'missing_api_key' });
    },
  },
  {
    name: 'routes the OCR alias to the OCR server under the canonical name',
    async run(t) {
      const res = await post(`${t.url}/v1/chat/completions`, chatBody(OCR.alias), auth(t));
      expect(res.status).toBe(200);
      expect(res.headers.get('x-mock-backend')).toBe('be_ocr');
      expect(res.headers.get('x-mock-model')).toBe(OCR.name);
    },
  },
  {
    name: 'forwards a 6 MB OCR body byte for byte',
    async run(t) {
      const body = ocrBody(OCR.name, 4_500_000, { modelLast: true });
      const res = await post(`${t.url}/v1/chat/completions`, body, auth(t));
      expect(res.status).toBe(200);
      expect(res.headers.get('x-body-sha256')).toBe(sha256(body));
    },
  },
  {
    name: 'answers chat and embeddings through the openai SDK from the right servers',
    async run(t) {
      const client = new OpenAI({ baseURL: `${t.url}/v1`, apiKey: t.apiKey, maxRetries: 0 });
      const chat = await client.chat.completions.create({ model: CHAT.name, messages: [{ role: 'user', content: 'hi' }] }).withResponse();
      expect(chat.response.headers.get('x-mock-backend')).toBe('be_chat');
      expect(chat.data.model).toBe(CHAT.name);
      const emb = await client.embeddings.create({ model: EMBED.name, input: ['a', 'b'] }).withResponse();
      expect(emb.response.headers.get('x-mock-backend')).toBe('be_embed');
      expect(emb.data.data).toHaveLength(2);
    },
  },
  {
    name: 'streams SSE to the end',
    async run(t) {
      const res = await post(`${t.url}/v1/chat/completions`, chatBody(CHAT.name, { stream: true }), auth(t));
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/event-stream');
      expect(await res.text()).toContain('data: [DONE]');
    },
  },
  {
    name: 'answers an unknown model with 404 model_not_found',
    async run(t) {
      const res = await post(`${t.url}/v1/chat/completions`, chatBody('no/such-model'), auth(t));
      expect(res.status).toBe(404);
      expect((await res.json()).error.code).toBe('model_not_found');
    },
  },
  {
    name: 'lists every model and alias of compose/gateway.json on GET /v1/models',
    needsServiceDns: true,
    async run(t) {
      const want = [OCR, CHAT, EMBED].flatMap((m) => [m.name, m.alias]);
      // The first health/listing round runs right after start; wait for the rounds that list them.
      await eventually(async () => {
        const res = await fetch(`${t.url}/v1/models`, { headers: auth(t) });
        expect(res.status).toBe(200);
        expect(((await res.json()).data as { id: string }[]).map((m) => m.id)).toEqual(expect.arrayContaining(want));
      }, { timeoutMs: 30_000, everyMs: 250 });
    },
  },
  {
    name: 'admin API takes the token from the secret file and lists the bootstrap key',
    needsAdmin: true,
    async run(t) {
      expect(t.adminUrl, 'this check needs the admin URL').toBeTruthy();
      const denied = await fetch(`${t.adminUrl}/admin/keys`, { headers: { authorization: 'Bearer wrong' } });
      expect(denied.status).toBe(401);
      const res = await fetch(`${t.adminUrl}/admin/keys`, { headers: { authorization: `Bearer ${t.adminToken}` } });
      expect(res.status).toBe(200);
      const ids = ((await res.json()).data as { id: string }[]).map((k) => k.id);
      expect(ids).toContain('dev');
    },
  },
];

/**
 * The same gateway, run by the official nginx image (njs built in as a dynamic module) instead of
 * the local binary: the bundle and includes are bind-mounted read-only, as in compose/. Runs only
 * when a Docker engine answers (GW_TEST_NGINX=container forces a failure instead of a skip).
 */
import { mkdirSync, mkdtempSync, chmodSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GenericContainer, StartedTestContainer, Wait } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderConfigObject } from '../../scripts/gen-config.mjs';
import { CHAT, chatBody, OCR, ocrBody, post, sha256 } from '../../tools/clients';
import { distDir, nginxDir, renderNginxConf } from '../../tools/config';
import { dockerUnavailable } from '../support/dockerEngine';
import { MockVllm, startMockVllm } from '../../tools/mockVllm';
import { freePort } from '../../tools/stack';

const reason = await dockerUnavailable();
if (reason && process.env.GW_TEST_NGINX === 'container') throw new Error(`GW_TEST_NGINX=container but ${reason}`);
if (reason) console.warn(`container mode skipped: ${reason}`);
const IMAGE = process.env.GW_NGINX_IMAGE ?? 'nginx:1.27';

describe.skipIf(reason !== null)(`gateway in the official ${IMAGE} image`, () => {
  let container: StartedTestContainer;
  let mocks: MockVllm[] = [];
  let url = '';
  let dir = '';

  beforeAll(async () => {
    mocks = [await startMockVllm({ name: 'be_chat', models: [CHAT] }), await startMockVllm({ name: 'be_ocr', models: [OCR] })];
    dir = mkdtempSync(join(tmpdir(), 'gw-container-'));
    chmodSync(dir, 0o755);
    mkdirSync(join(dir, 'routes'));
    renderConfigObject({
      upstreams: { be_chat: { servers: [`127.0.0.1:${mocks[0].port}`] }, be_ocr: { servers: [`127.0.0.1:${mocks[1].port}`] } },
      models: { [CHAT]: { upstream: 'be_chat' }, [OCR]: { upstream: 'be_ocr' } },
    }, join(dir, 'routes'));
    const port = await freePort();
    const conf = renderNginxConf({
      prefix: '/tmp/gw', listen: `127.0.0.1:${port}`, adminListen: `127.0.0.1:${await freePort()}`, workers: 2,
      jsModule: 'modules/ngx_http_js_module.so', includeDir: '/gw/nginx', distDir: '/gw/dist', routesDir: '/gw/routes',
      patch: (c) => c.replace('set $gw_auth_mode on;', 'set $gw_auth_mode off;'),
    });
    writeFileSync(join(dir, 'nginx.conf'), conf);
    // Host networking: the container's nginx reaches the mocks on 127.0.0.1 like the local one does.
    container = await new GenericContainer(IMAGE)
      .withNetworkMode('host')
      .withBindMounts([
        { source: distDir, target: '/gw/dist', mode: 'ro' },
        { source: nginxDir, target: '/gw/nginx', mode: 'ro' },
        { source: join(dir, 'routes'), target: '/gw/routes', mode: 'ro' },
        { source: join(dir, 'nginx.conf'), target: '/etc/nginx/nginx.conf', mode: 'ro' },
      ])
      .withCommand(['sh', '-c', 'mkdir -p /tmp/gw/logs /tmp/gw/tmp && exec nginx -g "daemon off;"'])
      .withWaitStrategy(Wait.forLogMessage(/start worker process/))
      .start();
    url = `http://127.0.0.1:${port}`;
  }, 180_000);

  afterAll(async () => {
    await container?.stop();
    for (const m of mocks) await m.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('routes by model and forwards an OCR body byte for byte', async () => {
    const chat = await post(`${url}/v1/chat/completions`, chatBody(CHAT));
    expect(chat.headers.get('x-mock-backend')).toBe('be_chat');
    const body = ocrBody(OCR, 2_000_000);
    const ocr = await post(`${url}/v1/chat/completions`, body);
    expect(ocr.headers.get('x-mock-backend')).toBe('be_ocr');
    expect(ocr.headers.get('x-body-sha256')).toBe(sha256(body));
  });

  it('answers errors in OpenAI JSON', async () => {
    const res = await post(`${url}/v1/chat/completions`, chatBody('nope'));
    expect(res.status).toBe(404);
    expect((await res.json()).error.code).toBe('model_not_found');
  });
});

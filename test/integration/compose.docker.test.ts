/**
 * The CPU dev stack (compose/dev.yml) in real containers, brought up with testcontainers' compose
 * support, with the conformance checks (test/support/stackChecks.ts) run through the published port.
 * It needs a Docker engine and the compose plugin; without them it is skipped, never failed, and
 * says why. GW_TEST_DOCKER=0 skips it on purpose. Bringing the stack up builds the mock image
 * (node:20-slim + tsx from the npm registry) and pulls the nginx image on first use.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StartedDockerComposeEnvironment } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeComposeSecrets } from '../../scripts/compose-secrets';
import { C, generateNginxFiles, loadPlan, writeFiles } from '../../scripts/gen-compose';
import { projectRoot } from '../../tools/config';
import { freePort, requireBundle } from '../../tools/stack';
import { stackChecks, StackTarget } from '../support/stackChecks';

function dockerStatus(): { ok: boolean; why: string } {
  if (process.env.GW_TEST_DOCKER === '0') return { ok: false, why: 'GW_TEST_DOCKER=0' };
  const v = spawnSync('docker', ['version', '--format', '{{.Server.Version}}'], { encoding: 'utf8', timeout: 15_000 });
  if (v.error) return { ok: false, why: `no docker client (${v.error.message})` };
  if (v.status !== 0) return { ok: false, why: `no Docker engine answered (${(v.stderr || v.stdout).trim().split('\n').pop()})` };
  const c = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8', timeout: 15_000 });
  if (c.status !== 0) return { ok: false, why: `Docker ${v.stdout.trim()} has no compose plugin` };
  return { ok: true, why: `Docker ${v.stdout.trim()}` };
}

const docker = dockerStatus();
if (!docker.ok) console.info(`compose.docker.test.ts: skipped, ${docker.why}. The same checks ran on a local nginx in compose.test.ts.`);

describe.skipIf(!docker.ok)(`compose dev stack in Docker (${docker.ok ? docker.why : `skipped: ${docker.why}`})`, () => {
  let env: StartedDockerComposeEnvironment | undefined;
  const secrets = mkdtempSync(join(tmpdir(), 'gw-compose-secrets-'));
  const target = {} as StackTarget;

  beforeAll(async () => {
    requireBundle();
    writeFiles(join(projectRoot, 'dist/compose'), generateNginxFiles());
    chmodSync(secrets, 0o755);
    writeComposeSecrets(secrets);
    const port = await freePort();
    const { DockerComposeEnvironment, Wait } = await import('testcontainers');
    env = await new DockerComposeEnvironment(join(projectRoot, 'compose'), 'dev.yml')
      .withEnvironment({ GW_PORT: String(port), GW_SECRETS_DIR: secrets })
      .withBuild()
      .withWaitStrategy('gateway-1', Wait.forHealthCheck())
      .withStartupTimeout(300_000)
      .up();
    Object.assign(target, { url: `http://127.0.0.1:${port}`, apiKey: readFileSync(join(secrets, 'dev_api_key'), 'utf8').trim() });
  }, 600_000);

  afterAll(async () => {
    await env?.down({ removeVolumes: true });
    rmSync(secrets, { recursive: true, force: true });
  }, 120_000);

  for (const c of stackChecks) it.skipIf(c.needsAdmin)(c.name, () => c.run(target));

  it('answers the admin API only inside the gateway container, with the token from the Docker secret', async () => {
    const g = env!.getContainer('gateway-1');
    const curl = (token: string) => g.exec(['sh', '-c',
      `curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer ${token}" http://${C.adminListen}/admin/keys`]);
    expect((await curl('$(cat /run/gw/secrets/gw_admin_token)')).output).toBe('200');
    expect((await curl('wrong')).output).toBe('401');
  });

  it('keeps model servers on the internal network only, with no route out', async () => {
    for (const s of loadPlan().servers) {
      const c = env!.getContainer(`${s.service}-1`);
      const nets = c.getNetworkNames();
      expect(nets, s.service).toHaveLength(1);
      expect(nets[0]).toMatch(/_models$/);
      const internal = spawnSync('docker', ['network', 'inspect', nets[0], '--format', '{{.Internal}}'], { encoding: 'utf8' });
      expect(internal.stdout.trim()).toBe('true');
      // No default route (destination 00000000) in the container's routing table: nothing to send to.
      const routes = (await c.exec(['cat', '/proc/net/route'])).output.split('\n').slice(1).filter(Boolean);
      expect(routes.filter((l) => l.split(/\s+/)[1] === '00000000'), s.service).toEqual([]);
    }
  });
});

/**
 * The harness stops what it starts even when its caller gives up mid-start (a timed-out beforeAll):
 * tools/nginx.ts Lifetime. globalSetup.ts checks the whole run for leftovers at its end.
 */
import { describe, expect, it } from 'vitest';
import { newLifetime, waitForPort } from '../../tools/nginx';
import { freePort, startStack } from '../../tools/stack';

const opts = (port: number) => ({ port, backends: { be_chat: {} }, models: { m: { upstream: 'be_chat' } } });

describe('harness lifetime', () => {
  it('a start given up at once stops its mocks and never leaves nginx listening', async () => {
    const port = await freePort();
    const life = newLifetime();
    const p = startStack(opts(port), life);
    await life.close();
    await expect(p).rejects.toThrow(/given up/);
    expect(await waitForPort('127.0.0.1', port, 300)).toBe(false);
  });

  it('closing the lifetime of a running stack stops its nginx', async () => {
    const port = await freePort();
    const life = newLifetime();
    const stack = await startStack(opts(port), life);
    expect(await waitForPort('127.0.0.1', port, 1000)).toBe(true);
    const mockPort = stack.mocks.be_chat.port;
    await life.close();
    expect(await waitForPort('127.0.0.1', port, 300)).toBe(false);
    expect(await waitForPort('127.0.0.1', mockPort, 300)).toBe(false);
  });
});

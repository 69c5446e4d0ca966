/** Starts bench/mockProcess.ts as a child process and talks to it (see that file). */
import { ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';
import { projectRoot } from '../tools/config';
import { MockOptions, MockStats } from '../tools/mockVllm';

export interface MockFleet {
  pid: number;
  /** Port of each mock by name. */
  ports: Record<string, number>;
  stats(): Promise<Record<string, MockStats>>;
  reset(): Promise<void>;
  stop(): Promise<void>;
}

export async function startMockFleet(specs: MockOptions[]): Promise<MockFleet> {
  const child: ChildProcess = fork(join(projectRoot, 'bench/mockProcess.ts'), [], {
    cwd: projectRoot,
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, BENCH_MOCKS: JSON.stringify(specs) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let exited = false;
  const exitP = new Promise<void>((res) => child.once('exit', () => { exited = true; res(); }));
  const ask = <T>(type: string, reply: string): Promise<T> => new Promise((resolve, reject) => {
    if (exited) return reject(new Error('the mock process has exited'));
    const on = (m: { type: string } & T) => {
      if (m.type !== reply) return;
      child.off('message', on);
      resolve(m);
    };
    child.on('message', on);
    child.send({ type });
  });
  const ready = await Promise.race([
    new Promise<{ ports: Record<string, number> }>((resolve) => {
      child.on('message', (m: { type: string; ports: Record<string, number> }) => { if (m.type === 'ready') resolve(m); });
    }),
    exitP.then(() => { throw new Error('the mock process exited before it was ready'); }),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the mock process did not start in 20 s')), 20_000).unref()),
  ]).catch((e) => {
    child.kill('SIGKILL');
    throw e;
  });
  return {
    pid: child.pid ?? -1,
    ports: ready.ports,
    stats: async () => (await ask<{ stats: Record<string, MockStats> }>('stats', 'stats')).stats,
    reset: async () => { await ask('reset', 'reset'); },
    async stop() {
      if (exited) return;
      child.send({ type: 'stop' });
      const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exitP;
      clearTimeout(t);
    },
  };
}

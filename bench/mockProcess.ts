/**
 * Runs the bench's mock vLLM backends (tools/mockVllm.ts) in a process of their own, so the
 * mocks and the load generator do not share one event loop (which would make every target look like
 * the mock's event loop). Started and spoken to by bench/mocks.ts over IPC:
 *   env BENCH_MOCKS = JSON MockOptions[]   →  {type:'ready', ports:{name:port}, pid}
 *   {type:'stats'}  → {type:'stats', stats:{name:MockStats}}     {type:'reset'}  → {type:'reset'}
 * The process exits when the parent says {type:'stop'} or goes away.
 */
import { MockOptions, MockVllm, startMockVllm } from '../tools/mockVllm';

const specs = JSON.parse(process.env.BENCH_MOCKS ?? '[]') as MockOptions[];
const mocks: MockVllm[] = [];
for (const s of specs) mocks.push(await startMockVllm({ ...s, host: '127.0.0.1' }));

async function stop(): Promise<void> {
  await Promise.all(mocks.map((m) => m.close()));
  process.exit(0);
}

process.on('message', (msg: { type: string }) => {
  if (msg.type === 'stats') {
    process.send?.({ type: 'stats', stats: Object.fromEntries(mocks.map((m) => [m.name, m.stats])) });
  } else if (msg.type === 'reset') {
    for (const m of mocks) m.resetStats();
    process.send?.({ type: 'reset' });
  } else if (msg.type === 'stop') {
    void stop();
  }
});
process.on('disconnect', () => void stop());
process.send?.({ type: 'ready', pid: process.pid, ports: Object.fromEntries(mocks.map((m) => [m.name, m.port])) });

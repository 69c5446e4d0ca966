/**
 * Runs one mock vLLM OpenAI server (tools/mockVllm.ts) in the foreground, for the CPU dev
 * compose stack (compose/dev.yml) and for trying the gateway by hand:
 *
 *   npx tsx scripts/mock-vllm.ts --name be_ocr --port 8000 --models nanonets/Nanonets-OCR2-3B,ocr
 *
 * Options: --name (reported in x-mock-backend), --models (comma-separated, required), --host
 * (default 127.0.0.1; 0.0.0.0 in a container), --port (default 8000), --latency-ms,
 * --max-concurrency (queue like vLLM's --max-num-seqs), --max-model-len. SIGTERM/SIGINT stop it.
 */
import { parseArgs } from 'node:util';
import { startMockVllm } from '../tools/mockVllm';

function intOpt(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name}: expected a whole number, got "${v}"`);
  return n;
}

export function parseMockArgs(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      name: { type: 'string', default: 'mock' },
      models: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '8000' },
      'latency-ms': { type: 'string' },
      'max-concurrency': { type: 'string' },
      'max-model-len': { type: 'string' },
    },
  });
  const models = (values.models ?? '').split(',').map((m) => m.trim()).filter(Boolean);
  if (models.length === 0) throw new Error('--models: name at least one model (comma-separated)');
  return {
    name: values.name,
    models,
    host: values.host,
    port: intOpt(values.port, 'port'),
    latencyMs: intOpt(values['latency-ms'], 'latency-ms'),
    maxConcurrency: intOpt(values['max-concurrency'], 'max-concurrency'),
    maxModelLen: intOpt(values['max-model-len'], 'max-model-len'),
  };
}

async function main(): Promise<void> {
  let opts: ReturnType<typeof parseMockArgs>;
  try {
    opts = parseMockArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`mock-vllm: ${(e as Error).message}\n`);
    process.exit(2);
  }
  const mock = await startMockVllm(opts);
  console.log(`mock vLLM "${mock.name}" on ${mock.url} serving ${opts.models.join(', ')}`);
  const stop = () => {
    mock.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (process.argv[1] && /mock-vllm\.[cm]?[jt]s$/.test(process.argv[1])) await main();

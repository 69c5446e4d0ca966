/**
 * The `llama` stage (full profile only): generation throughput of a real OpenAI-compatible server,
 * llama.cpp's llama-server on the suite's tiny random-weight llama (tools/gguf.ts), measured
 * directly and through the gateway in interleaved rounds. Tokens/s are the server's own
 * `usage.completion_tokens` of the 200 answers per second. Skipped, with the reason, where no
 * llama-server can be had (tools/findLlama.ts).
 */
import { findLlama, startLlamaServer } from '../tools/findLlama';
import { NginxRuntime } from '../tools/findNginx';
import { tinyLlamaFile } from '../tools/gguf';
import { freePort, startStack } from '../tools/stack';
import { LoadResult, median, runLoad } from './load';

export interface LlamaProfile {
  /** Seconds per measurement. */
  duration: number;
  rounds: number;
  connections: number[];
  /** Tokens each request generates (ignore_eos: exactly this many). */
  maxTokens: number;
}

interface Side {
  tokensPerSec: number;
  okRps: number;
  p50: number;
  p99: number;
  statuses: Record<string, number>;
}

export interface LlamaResult {
  version: string | null;
  skipped: string | null;
  maxTokens: number;
  rows: { connections: number; direct: Side; gateway: Side; ratio: number | null }[];
}

const MODEL = 'tiny-llama-chat';

export async function runLlama(p: LlamaProfile, nginx: NginxRuntime, log: (m: string) => void, broken: string[]): Promise<LlamaResult> {
  const found = findLlama();
  if (!found.ok) {
    log(`llama: skipped: ${found.reason}`);
    return { version: null, skipped: found.reason, maxTokens: p.maxTokens, rows: [] };
  }
  const server = startLlamaServer(found.rt, {
    model: tinyLlamaFile({ seed: 19, kind: 'chat' }), port: await freePort(), alias: MODEL,
    ctxSize: 1024 * 8, parallel: 8, threads: 1,
  });
  const rows: LlamaResult['rows'] = [];
  try {
    await server.ready();
    const stack = await startStack({
      rt: nginx, backends: {}, models: { [MODEL]: { upstream: 'be_llama', max_inflight: 64, max_queue: 256 } },
      upstreams: { be_llama: { servers: [`127.0.0.1:${server.port}`] } },
    });
    try {
      const body = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Write a long story.' }], max_tokens: p.maxTokens, ignore_eos: true });
      for (const c of p.connections) {
        const runs: Record<'direct' | 'gateway', { r: LoadResult; tps: number }[]> = { direct: [], gateway: [] };
        for (let round = 0; round < p.rounds; round++) {
          for (const target of ['direct', 'gateway'] as const) {
            let tokens = 0;
            const r = await runLoad({
              url: target === 'direct' ? server.url : stack.url, path: '/v1/chat/completions', body, connections: c, duration: p.duration, timeout: 60,
              onBody: (status, text) => {
                if (status !== 200) return;
                try {
                  tokens += (JSON.parse(text) as { usage: { completion_tokens: number } }).usage.completion_tokens;
                } catch { /* counted as no tokens */ }
              },
            });
            if (r.non2xx || r.errors || r.timeouts) broken.push(`llama ${target} c=${c}: statuses ${JSON.stringify(r.statuses)}, ${r.errors} errors, ${r.timeouts} timeouts`);
            runs[target].push({ r, tps: tokens / r.durationS });
          }
        }
        const side = (xs: { r: LoadResult; tps: number }[]): Side => ({
          tokensPerSec: median(xs.map((x) => x.tps)), okRps: median(xs.map((x) => x.r.okRps)),
          p50: median(xs.map((x) => x.r.latency.p50)), p99: median(xs.map((x) => x.r.latency.p99)), statuses: xs[xs.length - 1].r.statuses,
        });
        const row = { connections: c, direct: side(runs.direct), gateway: side(runs.gateway), ratio: null as number | null };
        row.ratio = row.direct.tokensPerSec > 0 ? row.gateway.tokensPerSec / row.direct.tokensPerSec : null;
        rows.push(row);
        log(`llama c=${c}: direct ${row.direct.tokensPerSec.toFixed(0)} tokens/s, gateway ${row.gateway.tokensPerSec.toFixed(0)} tokens/s (×${row.ratio?.toFixed(2) ?? 'n/a'})`);
      }
    } finally {
      await stack.stop();
    }
  } finally {
    await server.stop();
  }
  return { version: found.rt.version, skipped: null, maxTokens: p.maxTokens, rows };
}

export function llamaMarkdown(r: LlamaResult): string {
  const out = ['## Real server: llama.cpp llama-server, tiny random-weight llama', ''];
  if (r.skipped) return [...out, `Skipped: ${r.skipped}`, ''].join('\n');
  out.push(`llama-server ${r.version}; each request generates ${r.maxTokens} tokens (non-streamed chat, ignore_eos). Tokens/s are the server's own completion_tokens.`, '');
  out.push('| c | direct tokens/s | gateway tokens/s | gateway ÷ direct | direct p50 / p99 ms | gateway p50 / p99 ms |');
  out.push('|---:|---:|---:|---:|---:|---:|');
  for (const x of r.rows) {
    out.push(`| ${x.connections} | ${x.direct.tokensPerSec.toFixed(0)} | ${x.gateway.tokensPerSec.toFixed(0)} | ${x.ratio === null ? 'n/a' : x.ratio.toFixed(2)} | ${x.direct.p50.toFixed(1)} / ${x.direct.p99.toFixed(1)} | ${x.gateway.p50.toFixed(1)} / ${x.gateway.p99.toFixed(1)} |`);
  }
  out.push('');
  return out.join('\n');
}

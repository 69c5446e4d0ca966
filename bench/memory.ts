/**
 * Memory stage (full profile): worker RSS with MEMORY.connections large OCR bodies inside nginx at
 * once, through plain nginx and through the gateway, each target a fresh nginx so what an earlier
 * load left in the workers' heaps does not count.
 *
 * The backend (be_ocr_hold) reads each body and holds its answer MEMORY.holdMs, so every connection's
 * request sits inside nginx, body and all, most of the run; the mock's own count of open requests,
 * sampled during the load, shows how many were held at once. Per target: idle RSS (summed over the
 * workers, after one request), VmHWM reset where the kernel allows it, the load (peak of RSS samples
 * every 100 ms, then the summed VmHWM), and (peak − idle) ÷ requests held = what one request holds.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NGINX_ENV } from '../tools/config';
import type { NginxRuntime } from '../tools/findNginx';
import { BAD_LOG, NginxHandle, sleep, startNginx } from '../tools/nginx';
import { freePort } from '../tools/stack';
import { medianResult, runLoad } from './load';
import type { MockFleet } from './mocks';
import { childPids, peakRssSumMb, procAvailable, resetPeakRss, rssMb } from './procstat';
import type { Measured } from './report';
import { FEATURE_VARIANTS, MEMORY, PAYLOADS } from './scenarios';
import { preflight, renderPlain, startBenchMocks, startGateway } from './targets';

export interface MemoryRow {
  target: 'plain' | 'gateway';
  /** Summed worker RSS (MB) at idle, before the load. */
  idleRssMb: number | null;
  /** Largest summed worker RSS sampled during the load. */
  peakRssMb: number | null;
  /** Summed VmHWM after the load (since the reset, or since the workers started when it failed). */
  hwmMb: number | null;
  addedMb: number | null;
  /** addedMb ÷ the requests the backend held at once (median of its samples). */
  perRequestMb: number | null;
  /** perRequestMb ÷ the body's size. */
  bodyMultiple: number | null;
  result: Measured;
}

export interface MemoryResult {
  bodyMb: number;
  connections: number;
  holdMs: number;
  workers: number;
  durationS: number;
  /** Whether VmHWM could be reset before each load (else the high-water mark includes startup). */
  hwmReset: boolean;
  rows: MemoryRow[];
  skipped: string | null;
}

const PAYLOAD = PAYLOADS['ocr-2m-hold'];

async function target(name: 'plain' | 'gateway', fleet: MockFleet, rt: NginxRuntime, workers: number): Promise<{ url: string; headers: Record<string, string>; pids: () => number[]; errorLog: () => string; stop: () => Promise<void> }> {
  if (name === 'gateway') {
    const g = await startGateway(fleet, { workers, variant: FEATURE_VARIANTS[0] });
    return { url: g.stack.url, headers: g.headers, pids: () => childPids(g.stack.nginx.pid), errorLog: () => g.stack.nginx.errorLog(), stop: () => g.stack.stop() };
  }
  const ports: Record<string, number> = {};
  for (const up of Object.keys(fleet.ports)) ports[up] = await freePort();
  const prefix = mkdtempSync(join(tmpdir(), 'gw-bench-plain-mem-'));
  chmodSync(prefix, 0o755); // workers run as `nobody` when the master is root
  let nginx: NginxHandle;
  try {
    nginx = await startNginx(rt, { prefix, conf: renderPlain(prefix, workers, fleet.ports, ports), host: '127.0.0.1', port: ports[PAYLOAD.upstream], env: NGINX_ENV });
  } catch (e) {
    rmSync(prefix, { recursive: true, force: true });
    throw e;
  }
  return {
    url: `http://127.0.0.1:${ports[PAYLOAD.upstream]}`, headers: {}, pids: () => childPids(nginx.pid), errorLog: () => nginx.errorLog(),
    stop: async () => {
      await nginx.stop();
      rmSync(prefix, { recursive: true, force: true });
    },
  };
}

export async function runMemory(p: { duration: number }, rt: NginxRuntime, workers: number, log: (m: string) => void, broken: string[]): Promise<MemoryResult> {
  const body = PAYLOAD.body();
  const out: MemoryResult = {
    bodyMb: body.length / 2 ** 20, connections: MEMORY.connections, holdMs: MEMORY.holdMs, workers, durationS: p.duration, hwmReset: true, rows: [], skipped: null,
  };
  if (!procAvailable) {
    out.skipped = 'no /proc on this system: RSS cannot be read';
    return out;
  }
  // Only the holding backend: the gateway routes its model alone.
  const fleet = await startBenchMocks([PAYLOAD.upstream]);
  try {
    const inflight = async () => (await fleet.stats())[PAYLOAD.upstream]?.inflight ?? 0;
    for (const name of ['plain', 'gateway'] as const) {
      const t = await target(name, fleet, rt, workers);
      try {
        const bad = await preflight(t.url, PAYLOAD.path, body, t.headers, PAYLOAD.upstream);
        if (bad) {
          broken.push(`memory preflight → ${name}: ${bad}`);
          continue;
        }
        await sleep(300);
        const pids = t.pids();
        const idle = rssMb(pids);
        if (!resetPeakRss(pids)) out.hwmReset = false;
        const r = await runLoad({
          url: t.url, path: PAYLOAD.path, body, headers: t.headers, connections: MEMORY.connections, duration: p.duration, timeout: 30,
          serverPids: () => pids, backendPids: [fleet.pid], backendInflight: inflight,
        });
        const hwm = peakRssSumMb(pids);
        if (r.errors || r.timeouts || r.non2xx || r.ok === 0) broken.push(`memory → ${name}: ${r.errors} errors, ${r.timeouts} timeouts, statuses ${JSON.stringify(r.statuses)}`);
        const m = medianResult([r]);
        const held = m.backendInflight?.median ?? null;
        const added = idle !== null && m.serverPeakRssMb !== null ? m.serverPeakRssMb - idle : null;
        const perRequest = added !== null && held ? added / held : null;
        out.rows.push({ target: name, idleRssMb: idle, peakRssMb: m.serverPeakRssMb, hwmMb: hwm, addedMb: added, perRequestMb: perRequest, bodyMultiple: perRequest === null ? null : perRequest / out.bodyMb, result: m });
        log(`memory → ${name}: RSS ${idle?.toFixed(1)} → ${m.serverPeakRssMb?.toFixed(1)} MB (HWM ${hwm?.toFixed(1)}) with ${held ?? '?'} of ${MEMORY.connections} requests held at the backend, `
          + `${perRequest?.toFixed(2) ?? 'n/a'} MB per request`);
        const lines = t.errorLog().split('\n').filter((l) => BAD_LOG.test(l));
        if (lines.length) broken.push(`memory ${name} nginx error.log: ${lines.slice(0, 3).join(' | ')}`);
      } finally {
        await t.stop();
      }
      // The next target starts with nothing of this one's load still open at the backend.
      const end = Date.now() + 10_000;
      while (Date.now() < end && (await inflight()) > 0) await sleep(200);
    }
  } finally {
    await fleet.stop();
  }
  return out;
}

/**
 * One bounded autocannon run, with what autocannon does not report precisely enough here:
 * latency percentiles from every response's own hrtime (autocannon's histogram has 1 ms buckets,
 * too coarse for a sub-millisecond overhead), per-status counts, CPU time of given processes
 * (nginx workers, the mock process) and peak RSS of the nginx workers during the run, and how many
 * requests were really open at once (Little's law on the client side; the backend's own count when
 * the spec can ask it), so a cell that claims N concurrent streams shows it held them.
 */
import autocannon, { AutocannonRequest } from 'autocannon';
import { cpuMs, rssSampler } from './procstat';

export interface LoadSpec {
  url: string;
  path: string;
  body: string;
  headers?: Record<string, string>;
  connections: number;
  /** Seconds. */
  duration: number;
  /** Stop after this many requests instead (duration then only bounds the run). */
  amount?: number;
  /** Open loop: total requests per second across connections. */
  overallRate?: number;
  /** Seconds before a request counts as a timeout. */
  timeout?: number;
  /** Processes whose CPU time is measured (e.g. nginx workers) and whose RSS is sampled. */
  serverPids?: () => number[];
  /** Other processes whose CPU time is measured (e.g. the mock backends). */
  backendPids?: number[];
  /** Called with each response body (costs a copy per response; only for the real target). */
  onBody?: (status: number, body: string) => void;
  /** Requests open at the backend right now (e.g. the mock's stats), sampled every 100 ms of the run. */
  backendInflight?: () => Promise<number>;
}

export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  mean: number;
  max: number;
}

export interface LoadResult {
  connections: number;
  durationS: number;
  /** Responses of any status per second. */
  rps: number;
  /** 2xx responses per second. */
  okRps: number;
  completed: number;
  ok: number;
  non2xx: number;
  statuses: Record<string, number>;
  errors: number;
  timeouts: number;
  bytesPerSec: number;
  /** Latency of 2xx responses, ms. */
  latency: Percentiles;
  /** CPU time of serverPids / backendPids per 1000 responses (ms), and of this process. */
  serverCpuMsPer1k: number | null;
  backendCpuMsPer1k: number | null;
  loadgenCpuPct: number;
  serverPeakRssMb: number | null;
  /**
   * Requests open at once on the client side, averaged over the run: the sum of every response's
   * latency ÷ the run's length (Little's law). A bit under the connection count even when every
   * connection always has a request open: the requests cut off at the end of the run are not counted.
   */
  meanInflight: number;
  /** The backend's own count of open requests (spec.backendInflight), median and max of the samples; null when not sampled. */
  backendInflight: { median: number; max: number; samples: number } | null;
}

export function percentiles(values: number[]): Percentiles {
  if (values.length === 0) return { p50: NaN, p90: NaN, p99: NaN, p999: NaN, mean: NaN, max: NaN };
  const v = Float64Array.from(values).sort();
  const at = (q: number) => v[Math.min(v.length - 1, Math.max(0, Math.ceil(q * v.length) - 1))];
  let sum = 0;
  for (const x of v) sum += x;
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), p999: at(0.999), mean: sum / v.length, max: v[v.length - 1] };
}

export async function runLoad(s: LoadSpec): Promise<LoadResult> {
  const lat: number[] = [];
  const statuses: Record<string, number> = {};
  let completed = 0;
  let ok = 0;
  let bytes = 0;
  let busyMs = 0;
  const serverPids = s.serverPids ? s.serverPids() : [];
  const cpu0 = cpuMs(serverPids);
  const bcpu0 = cpuMs(s.backendPids ?? []);
  const self0 = process.cpuUsage();
  const rss = rssSampler(() => serverPids);
  const inflightSamples: number[] = [];
  let sampling = false;
  const inflightTimer = s.backendInflight ? setInterval(() => {
    if (sampling) return;
    sampling = true;
    s.backendInflight!().then((n) => inflightSamples.push(n), () => undefined).finally(() => { sampling = false; });
  }, 100) : null;
  const request: AutocannonRequest = { method: 'POST', path: s.path, body: s.body };
  if (s.onBody) {
    const cb = s.onBody;
    request.onResponse = (status, body) => cb(status, body);
  }
  const t0 = process.hrtime.bigint();
  const inst = autocannon({
    url: s.url,
    method: 'POST',
    headers: { 'content-type': 'application/json', ...s.headers },
    body: s.body,
    requests: [request],
    connections: s.connections,
    ...(s.amount ? { amount: s.amount } : { duration: s.duration }),
    overallRate: s.overallRate,
    timeout: s.timeout ?? 30,
    // autocannon only notices the end of `duration` at a sample tick (default every 1 s, which turns
    // 1.5 s into 2 s of load); tick every 100 ms so runs last what they say.
    sampleInt: 100,
  });
  inst.on('response', (_c, status, resBytes, ms) => {
    completed++;
    busyMs += ms;
    statuses[status] = (statuses[status] ?? 0) + 1;
    bytes += resBytes;
    if (status >= 200 && status < 300) {
      ok++;
      lat.push(ms);
    }
  });
  const res = await inst;
  if (inflightTimer) clearInterval(inflightTimer);
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const self = process.cpuUsage(self0);
  const peak = rss.stop();
  const cpu1 = cpuMs(serverPids);
  const bcpu1 = cpuMs(s.backendPids ?? []);
  const durationS = res.duration || wall;
  const per1k = (a: number | null, b: number | null) => (a === null || b === null || completed === 0 ? null : ((b - a) * 1000) / completed);
  return {
    connections: s.connections,
    durationS,
    rps: completed / durationS,
    okRps: ok / durationS,
    completed,
    ok,
    non2xx: completed - ok,
    statuses,
    errors: res.errors,
    timeouts: res.timeouts,
    bytesPerSec: bytes / durationS,
    latency: percentiles(lat),
    serverCpuMsPer1k: per1k(cpu0, cpu1),
    backendCpuMsPer1k: per1k(bcpu0, bcpu1),
    loadgenCpuPct: ((self.user + self.system) / 1000 / (wall * 1000)) * 100,
    serverPeakRssMb: peak,
    meanInflight: busyMs / 1000 / durationS,
    backendInflight: inflightSamples.length ? { median: median(inflightSamples), max: Math.max(...inflightSamples), samples: inflightSamples.length } : null,
  };
}

export function median(xs: number[]): number {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/** Median across rounds of every numeric field (statuses/errors summed: a bench is broken if any round broke). */
export function medianResult(rounds: LoadResult[]): LoadResult & { rounds: number } {
  const num = (f: (r: LoadResult) => number | null) => {
    const xs = rounds.map(f).filter((x): x is number => x !== null);
    return xs.length ? median(xs) : null;
  };
  const statuses: Record<string, number> = {};
  for (const r of rounds) for (const [k, v] of Object.entries(r.statuses)) statuses[k] = (statuses[k] ?? 0) + v;
  return {
    rounds: rounds.length,
    connections: rounds[0].connections,
    durationS: num((r) => r.durationS) ?? 0,
    rps: num((r) => r.rps) ?? 0,
    okRps: num((r) => r.okRps) ?? 0,
    completed: rounds.reduce((a, r) => a + r.completed, 0),
    ok: rounds.reduce((a, r) => a + r.ok, 0),
    non2xx: rounds.reduce((a, r) => a + r.non2xx, 0),
    statuses,
    errors: rounds.reduce((a, r) => a + r.errors, 0),
    timeouts: rounds.reduce((a, r) => a + r.timeouts, 0),
    bytesPerSec: num((r) => r.bytesPerSec) ?? 0,
    latency: {
      p50: num((r) => r.latency.p50) ?? NaN, p90: num((r) => r.latency.p90) ?? NaN, p99: num((r) => r.latency.p99) ?? NaN,
      p999: num((r) => r.latency.p999) ?? NaN, mean: num((r) => r.latency.mean) ?? NaN, max: Math.max(...rounds.map((r) => r.latency.max)),
    },
    serverCpuMsPer1k: num((r) => r.serverCpuMsPer1k),
    backendCpuMsPer1k: num((r) => r.backendCpuMsPer1k),
    loadgenCpuPct: num((r) => r.loadgenCpuPct) ?? 0,
    serverPeakRssMb: rounds.some((r) => r.serverPeakRssMb !== null) ? Math.max(...rounds.map((r) => r.serverPeakRssMb ?? 0)) : null,
    meanInflight: num((r) => r.meanInflight ?? null) ?? NaN,
    backendInflight: rounds.some((r) => r.backendInflight) ? {
      median: median(rounds.map((r) => r.backendInflight?.median ?? NaN)),
      max: Math.max(...rounds.map((r) => r.backendInflight?.max ?? 0)),
      samples: rounds.reduce((a, r) => a + (r.backendInflight?.samples ?? 0), 0),
    } : null,
  };
}

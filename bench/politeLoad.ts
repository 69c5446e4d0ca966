/**
 * A closed-loop load of clients that behave like the OpenAI SDKs: each sends a request, and on a
 * 429 waits the Retry-After it was given before trying again. autocannon's open loop ignores
 * Retry-After, so on a 2-core machine the refused requests it resends at once compete for CPU
 * with the backend itself; this loop shows what a queue does for clients that listen.
 * Latency is per request, from its first attempt to its answer, retries included.
 */
export interface PoliteResult {
  clients: number;
  durationS: number;
  completed: number;
  completedPerS: number;
  attempts: number;
  refused: number;
  other: Record<string, number>;
  errors: number;
  latency: { p50: number; p99: number; max: number };
}

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export async function politeLoad(o: { url: string; body: string; headers: Record<string, string>; clients: number; durationS: number; maxRetryAfterS?: number }): Promise<PoliteResult> {
  const end = Date.now() + o.durationS * 1000;
  const lat: number[] = [];
  let attempts = 0, refused = 0, errors = 0;
  const other: Record<string, number> = {};
  async function client(): Promise<void> {
    while (Date.now() < end) {
      const t0 = Date.now();
      for (;;) {
        attempts++;
        let status = 0;
        let retry = 1;
        try {
          const res = await fetch(o.url, { method: 'POST', body: o.body, headers: { 'content-type': 'application/json', ...o.headers } });
          await res.arrayBuffer();
          status = res.status;
          retry = Number(res.headers.get('retry-after') ?? 1) || 1;
        } catch {
          errors++;
          break;
        }
        if (status === 200) {
          if (Date.now() <= end) lat.push(Date.now() - t0);
          break;
        }
        if (status !== 429) {
          other[status] = (other[status] ?? 0) + 1;
          break;
        }
        refused++;
        const wait = Math.min(retry, o.maxRetryAfterS ?? 60) * 1000;
        if (Date.now() + wait >= end) return;
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }
  await Promise.all(Array.from({ length: o.clients }, client));
  lat.sort((a, b) => a - b);
  return {
    clients: o.clients, durationS: o.durationS, completed: lat.length, completedPerS: lat.length / o.durationS,
    attempts, refused, other, errors, latency: { p50: pct(lat, 50), p99: pct(lat, 99), max: lat.length ? lat[lat.length - 1] : 0 },
  };
}

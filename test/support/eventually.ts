/**
 * Waits for something the gateway does by itself, after the answer a test got: a log line written
 * in nginx's log phase, the usage ledger, a key sync round, a health round, a request reaching the
 * queue. Runs `check` (which throws, e.g. with expect(), until the state is there) until it passes,
 * and fails with its last error. The timeout bounds a hang; it is not a speed assertion, so keep it
 * generous.
 */
export async function eventually<T>(check: () => T | Promise<T>, opts: { timeoutMs?: number; everyMs?: number } = {}): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const everyMs = opts.everyMs ?? 25;
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (e) {
      if (Date.now() > end) throw e;
      await new Promise((r) => setTimeout(r, everyMs));
    }
  }
}

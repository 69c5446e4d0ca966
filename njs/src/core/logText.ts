/**
 * The error-log line format every gateway message uses, in one place: the "gw: " prefix, and
 * "gw: <what> failed: <error>" for a handler that threw. The test harness's clean-log check
 * (tools/nginx.ts BAD_LOG, used by test/support/useGateway.ts and the bench) is built from FAILED_LINE, so the two cannot drift.
 */
export const LOG_PREFIX = 'gw: ';

/** Matches a "gw: <what> failed" line: a handler that threw, which a test must never see by chance. */
export const FAILED_LINE = /gw: \w+ failed/;

/**
 * A thrown value as log text: the error itself ("TypeError: ..."), then its stack when there is one
 * (it names the line). The njs engine's stack starts with the error, QuickJS's holds the frames only,
 * so the error is put in front where the stack does not start with it.
 */
export function errorText(e: unknown): string {
  const stack = e ? (e as Error).stack : undefined;
  if (!stack) return String(e);
  let head: string;
  try {
    head = String(e);
  } catch (x) {
    return String(stack);
  }
  return String(stack).indexOf(head) === 0 ? String(stack) : head + '\n' + stack;
}

/** The line for a handler (or stage) `what` that threw `e`, without the prefix. */
export function failedText(what: string, e: unknown): string {
  return what + ' failed: ' + errorText(e);
}

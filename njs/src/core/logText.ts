/**
 * The error-log line format every gateway message uses, in one place: the "gw: " prefix, and
 * "gw: <what> failed: <error>" for a handler that threw. The test harness's clean-log check
 * (tools/nginx.ts BAD_LOG, used by test/support/useGateway.ts and the bench) is built from FAILED_LINE, so the two cannot drift.
 */
export const LOG_PREFIX = 'gw: ';

/** Matches a "gw: <what> failed" line: a handler that threw, which a test must never see by chance. */
export const FAILED_LINE = /gw: \w+ failed/;

/** A thrown value as log text: the stack when there is one (it names the line), else the value. */
export function errorText(e: unknown): string {
  return String(e && (e as Error).stack ? (e as Error).stack : e);
}

/** The line for a handler (or stage) `what` that threw `e`, without the prefix. */
export function failedText(what: string, e: unknown): string {
  return what + ' failed: ' + errorText(e);
}

/**
 * What the log phase knows about one finished request, from ONE nginx variable: $gw_end_facts
 * (nginx/logging-http.conf) joins the variables the usage ledger and the metrics need with "|",
 * so the log phase pays for two variable reads instead of a dozen (docs/benchmarks.md). The fields
 * come in END_FACTS order; every one is "|"-free (numbers, nginx time lists, catalogue error
 * codes) except the model, which is last and takes the rest. The key id may hold "|" (a JWT
 * subject such as `jwt:auth0|123`), so it is read on its own and passed beside the facts.
 *
 * The facts stay the array split() made, read by Fact index: njs 0.8 pays for every property of
 * an object literal, and this runs in every request's log phase.
 */

/** The order of the fields in $gw_end_facts; logging-http.conf's map must list the same. */
export const END_FACTS = ['status', 'request_time', 'upstream_response_time', 'upstream_header_time', 'gw_stream',
  'gw_queue_ms', 'gw_ttft_ms', 'gw_prompt_tokens', 'gw_completion_tokens', 'gw_total_tokens', 'gw_error_code',
  'msec', 'gw_end_plain', 'gw_model'];

/** Index of each END_FACTS field in the facts array (a const enum: esbuild writes the numbers in). */
// biome-ignore lint/suspicious/noConstEnum: esbuild writes the numbers in; a plain enum is an object every request VM would build.
export const enum Fact {
  status = 0,
  requestTime = 1,
  upstreamResponseTime = 2,
  upstreamHeaderTime = 3,
  stream = 4,
  queueMs = 5,
  ttftMs = 6,
  promptTokens = 7,
  completionTokens = 8,
  totalTokens = 9,
  errorCode = 10,
  /** nginx's $msec at log time (epoch seconds with ms): the ledger's day, without a Date in njs. */
  msec = 11,
  /**
   * "1" when neither the model nor the key id holds a backslash, '"', a newline or "|" (a regex map in
   * logging-http.conf): metrics labels and ledger keys take both as they are, with no check in njs.
   * Any other value: njs checks and escapes them itself.
   */
  plain = 12,
  model = 13,
  /** How many fields; END_FACTS.length written out so no VM builds that array. */
  count = 14,
}

/**
 * The facts of $gw_end_facts, indexed by Fact; null when there is nothing to record: not an API
 * request (no model routed, no gateway-made error), or a value of another shape (a map that lists
 * other fields).
 */
export function splitEndFacts(line: string): string[] | null {
  const p = line.split('|');
  if (p.length < Fact.count) return null;
  if (p.length > Fact.count) {
    p[Fact.model] = p.slice(Fact.model).join('|');
    p.length = Fact.count;
  }
  if (p[Fact.model] === '' && p[Fact.errorCode] === '') return null;
  return p;
}

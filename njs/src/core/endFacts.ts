/**
 * What the log phase knows about one finished request, from ONE nginx variable: $gw_end_facts
 * (nginx/logging-http.conf) joins the variables the usage ledger and the metrics need with "|",
 * so the log phase pays for two variable reads instead of a dozen (docs/benchmarks.md). The fields
 * come in END_FACTS order; every one is "|"-free (numbers, nginx time lists, catalogue error
 * codes) except the model, which is last and takes the rest. The key id may hold "|" (a JWT
 * subject such as `jwt:auth0|123`), so it is read on its own and passed in.
 */
import { RequestFacts } from './metrics';

/** The order of the fields in $gw_end_facts; logging-http.conf's map must list the same. */
export const END_FACTS = ['status', 'request_time', 'upstream_response_time', 'upstream_header_time', 'gw_stream',
  'gw_queue_ms', 'gw_ttft_ms', 'gw_prompt_tokens', 'gw_completion_tokens', 'gw_total_tokens', 'gw_error_code',
  'gw_model'];

export interface EndFacts extends RequestFacts {
  totalTokens: string;
}

/**
 * The facts of $gw_end_facts; null when there is nothing to record: not an API request (no model
 * routed, no gateway-made error), or a value of another shape (a map that lists other fields).
 */
export function parseEndFacts(line: string, keyId: string): EndFacts | null {
  const p = line.split('|');
  const n = END_FACTS.length;
  if (p.length < n) return null;
  const model = p.length === n ? p[n - 1] : p.slice(n - 1).join('|');
  if (model === '' && p[10] === '') return null;
  return {
    status: p[0], requestTime: p[1], upstreamResponseTime: p[2], upstreamHeaderTime: p[3], stream: p[4], queueMs: p[5],
    ttftMs: p[6], promptTokens: p[7], completionTokens: p[8], totalTokens: p[9], errorCode: p[10], keyId: keyId, model: model,
  };
}

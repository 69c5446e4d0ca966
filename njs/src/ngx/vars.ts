/**
 * The js_var names the handlers read and write. Every one is declared in nginx/gateway-http.conf;
 * the union keeps a typo from silently creating a variable nginx never sees.
 */
export type GwVar =
  | 'gw_model' // model as routed: the canonical name the backend serves
  | 'gw_model_requested' // model as the client sent it (may be an alias)
  | 'gw_upstream' // upstream{} name proxy_pass goes to
  | 'gw_body' // rewritten request body (alias → canonical), used only by @gw_upstream_rewrite
  | 'gw_error_code' // OpenAI error code of a gateway-made error, for the access log
  | 'gw_stream' // "1" when the body asked for "stream": true, else "0"
  | 'gw_key_id' // id of the API key (safe to log; never the key), "" when auth is off
  | 'gw_key_models' // the key's allowed models: "" (auth off, or every model: "*" is left unwritten), or a JSON array (core/access.ts)
  | 'gw_tier' // priority tier for the wait queue: "high" | "normal" | "low"
  | 'gw_queue_ms' // milliseconds the request waited for a concurrency slot
  | 'gw_auth_mode' // "on" (default) or "off": `set $gw_auth_mode off;` for a trusted network
  | 'gw_auth_error' // OpenAI JSON body of an auth refusal, returned by gateway-server.conf
  | 'gw_retry_after' // seconds, for the Retry-After header of a 429
  | 'gw_upstream_auth' // Authorization header sent upstream ("" = none)
  | 'gw_queue_result' // "" (no cap), "slot", "waited", "full" or "timeout": how admission went
  | 'gw_prompt_tokens' // usage.prompt_tokens of the response (JSON or final SSE chunk), "" if none (logging-http.conf)
  | 'gw_completion_tokens' // usage.completion_tokens, "" if none
  | 'gw_total_tokens' // usage.total_tokens, "" if none
  | 'gw_ttft_ms'; // SSE only: ms from request start to the first body bytes, "" otherwise

type VarRequest = Pick<NginxHTTPRequest, 'variables'>;

export function setVar(r: VarRequest, name: GwVar, value: string): void {
  r.variables[name] = value;
}

/** Sets a js_var to bytes: njs keeps a Buffer's bytes as they are (binary bodies survive). */
export function setVarBytes(r: VarRequest, name: GwVar, value: Buffer): void {
  (r.variables as unknown as { [k: string]: Buffer })[name] = value;
}

export function getVar(r: VarRequest, name: GwVar): string {
  const v = r.variables[name];
  return v !== undefined ? v : '';
}

/**
 * r.variables typed by GwVar, for a handler that reads and writes several: it takes the object once
 * (`r.variables as GwVars`; njs 0.8 builds it again on every access) and sets properties on it, no
 * call per variable. A declared js_var reads as a string, "" when empty.
 */
export type GwVars = { [name in GwVar]?: string } & { request_id?: string };

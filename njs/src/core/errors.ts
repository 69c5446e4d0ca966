/**
 * The one catalogue of gateway errors. Every error body the gateway writes, from njs or from the
 * static `return` bodies in nginx/ (error_page locations in edge-server.conf, the auth and path
 * refusals; a unit test checks every one of them matches), is built here in OpenAI's envelope:
 * {"error":{"message","type","param","code"}}.
 */

export type ErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'server_error'
  | 'service_unavailable';

export type ErrorCode =
  | 'invalid_json'
  | 'missing_model'
  | 'invalid_model'
  | 'invalid_multipart'
  | 'model_not_found'
  | 'method_not_allowed'
  | 'not_found'
  | 'request_too_large'
  | 'upstream_unavailable'
  | 'upstream_timeout'
  | 'internal_error'
  | 'missing_api_key'
  | 'invalid_api_key'
  | 'rate_limit_exceeded'
  | 'invalid_admin_token'
  | 'admin_disabled'
  | 'invalid_request'
  | 'key_not_found'
  | 'key_read_only'
  | 'model_unavailable'
  | 'queue_full'
  | 'queue_timeout'
  | 'bad_request'
  | 'invalid_path'
  | 'request_timeout'
  | 'uri_too_long'
  | 'header_too_large'
  | 'not_implemented'
  | 'http_version_not_supported';

interface CatalogueEntry {
  status: number;
  type: ErrorType;
  param: string | null;
  message: string;
}

// Built on first use, not at load: njs 0.8 rebuilds a module's tables in every request's VM, and
// these ~20 small objects cost ~50 us there, on requests that never fail (njs/build.mjs).
let catalogue: { [code: string]: CatalogueEntry } | null = null;

function table(): { [code: string]: CatalogueEntry } {
  if (catalogue === null) catalogue = buildCatalogue();
  return catalogue;
}

function buildCatalogue(): { [code: string]: CatalogueEntry } {
  return {
    invalid_json: { status: 400, type: 'invalid_request_error', param: null,
      message: 'We could not parse the JSON body of your request. Send a JSON object with a "model" field.' },
    missing_model: { status: 400, type: 'invalid_request_error', param: 'model',
      message: 'You must provide a model parameter.' },
    invalid_model: { status: 400, type: 'invalid_request_error', param: 'model',
      message: 'The "model" parameter must be a non-empty string.' },
    invalid_multipart: { status: 400, type: 'invalid_request_error', param: null,
      message: 'We could not parse the multipart body of your request. Send a multipart/form-data body with a boundary and a "model" field.' },
    model_not_found: { status: 404, type: 'invalid_request_error', param: 'model',
      message: 'The model does not exist or you do not have access to it. GET /v1/models lists the models you can use.' },
    method_not_allowed: { status: 405, type: 'invalid_request_error', param: null,
      message: 'Method not allowed on this endpoint.' },
    not_found: { status: 404, type: 'invalid_request_error', param: null,
      message: 'Unknown endpoint. See GET /v1/models and the OpenAI API paths under /v1/.' },
    request_too_large: { status: 413, type: 'invalid_request_error', param: null,
      message: 'The request body is larger than this gateway accepts (client_max_body_size).' },
    upstream_unavailable: { status: 502, type: 'server_error', param: null,
      message: 'No backend for this model could be reached. Try again later.' },
    upstream_timeout: { status: 504, type: 'server_error', param: null,
      message: 'The backend for this model did not answer in time. Try again later.' },
    internal_error: { status: 500, type: 'server_error', param: null,
      message: 'The gateway failed to handle this request. The error log has the details.' },
    missing_api_key: { status: 401, type: 'authentication_error', param: null,
      message: 'You did not provide an API key. Send it as "Authorization: Bearer <key>".' },
    invalid_api_key: { status: 401, type: 'authentication_error', param: null,
      message: 'Incorrect API key provided, or the key was revoked or has expired.' },
    rate_limit_exceeded: { status: 429, type: 'rate_limit_error', param: null,
      message: 'Rate limit reached for this API key. Retry after the number of seconds in the Retry-After header.' },
    invalid_admin_token: { status: 401, type: 'authentication_error', param: null,
      message: 'The admin API needs "Authorization: Bearer <admin token>" (GW_ADMIN_TOKEN or GW_ADMIN_TOKEN_FILE).' },
    admin_disabled: { status: 503, type: 'service_unavailable', param: null,
      message: 'The admin API is disabled: no admin token is configured. Set GW_ADMIN_TOKEN or GW_ADMIN_TOKEN_FILE and keep `env GW_ADMIN_TOKEN; env GW_ADMIN_TOKEN_FILE;` in nginx.conf.' },
    invalid_request: { status: 400, type: 'invalid_request_error', param: null,
      message: 'The request is not valid for this endpoint.' },
    key_not_found: { status: 404, type: 'not_found_error', param: null,
      message: 'No API key with that id.' },
    queue_full: { status: 429, type: 'rate_limit_error', param: null,
      message: 'This model is at capacity and its wait queue is full. Retry after the number of seconds in the Retry-After header.' },
    queue_timeout: { status: 429, type: 'rate_limit_error', param: null,
      message: 'This model stayed at capacity for as long as a request may wait. Retry after the number of seconds in the Retry-After header.' },
    key_read_only: { status: 409, type: 'invalid_request_error', param: null,
      message: 'This key comes from GW_KEYS_FILE; change it in that file (the gateway re-reads it within 5 s).' },
    model_unavailable: { status: 503, type: 'service_unavailable', param: 'model',
      message: 'Every backend of this model is failing its health checks. Retry after the number of seconds in the Retry-After header.' },
    // Errors nginx itself detects before any handler runs (nginx/edge-server.conf).
    bad_request: { status: 400, type: 'invalid_request_error', param: null,
      message: 'The HTTP request is malformed (request line, headers or chunked body). Send a well-formed HTTP/1.1 request.' },
    invalid_path: { status: 400, type: 'invalid_request_error', param: null,
      message: 'The request path must be plain: UTF-8, no percent-encoding, no dot segments, no backslashes, no empty segments (e.g. /v1/chat/completions).' },
    request_timeout: { status: 408, type: 'invalid_request_error', param: null,
      message: 'The client did not send the request in time.' },
    uri_too_long: { status: 414, type: 'invalid_request_error', param: null,
      message: 'The request URI is longer than this gateway accepts (large_client_header_buffers).' },
    header_too_large: { status: 431, type: 'invalid_request_error', param: null,
      message: 'A request header, or all of them together, is larger than this gateway accepts (large_client_header_buffers).' },
    not_implemented: { status: 501, type: 'invalid_request_error', param: null,
      message: 'The request uses an HTTP feature this gateway does not implement (a Transfer-Encoding other than chunked).' },
    http_version_not_supported: { status: 505, type: 'invalid_request_error', param: null,
      message: 'The HTTP version is not supported. Use HTTP/1.0 or HTTP/1.1.' },
  };
}

export interface GwError {
  status: number;
  code: ErrorCode;
  /** The JSON text of the OpenAI envelope. */
  body: string;
}

/** Builds the error for `code`; `message` replaces the catalogue's text when the caller knows more. */
export function gwError(code: ErrorCode, message?: string): GwError {
  const e = table()[code];
  return {
    status: e.status,
    code: code,
    body: JSON.stringify({ error: { message: message !== undefined ? message : e.message, type: e.type, param: e.param, code: code } }),
  };
}

/**
 * 404 model_not_found naming the model the client asked for (cut to 200 characters: the client's
 * string is echoed, nothing from the routing table is).
 */
export function modelNotFound(name: string): GwError {
  const shown = name.length > 200 ? name.slice(0, 200) + '...' : name;
  return gwError('model_not_found', 'The model `' + shown + '` does not exist or you do not have access to it. GET /v1/models lists the models you can use.');
}

/** Every code, for tests and docs. */
export function errorCodes(): ErrorCode[] {
  return Object.keys(table()) as ErrorCode[];
}

/** Reads the request body as bytes, turning njs's exceptions into gateway errors. */
import { GwError, gwError } from '../core/errors';

/** The body's bytes, or null when njs cannot read it (bodyUnreadable() says why). */
export function readBody(r: Pick<NginxHTTPRequest, 'requestBuffer'>): Buffer | null {
  try {
    const b = r.requestBuffer;
    // njs 0.8: a module-level Buffer is detached in each request's VM clone, so allocate here.
    return b !== undefined ? b : Buffer.alloc(0);
  } catch (e) {
    return null;
  }
}

export function bodyUnreadable(): GwError {
  // njs < 0.8.10 cannot read a body nginx spooled to a temp file. gateway-server.conf sets
  // client_body_buffer_size = client_max_body_size so this only happens if someone lowers it.
  return gwError('request_too_large',
    'The request body did not fit in memory: set client_body_buffer_size equal to client_max_body_size in the gateway location.');
}

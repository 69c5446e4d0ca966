/**
 * The request path's cold start of the key store: loads the key files on the first miss after a
 * start (ngx/keyStore.ts lookup). A cold module (`cold` in njs/handlers.json): loading the key files
 * takes most of the key store's code, which only this first request of a fresh nginx runs, so it is
 * instantiated in that request's VM only instead of in every request's.
 */
import { LOG_PREFIX } from '../core/logText';
import { ensureLoaded, warnProblems } from './keyStore';

/** Loads the key files unless loaded (or waits for the worker loading them); warns what they got wrong. */
export function loadForRequest(log: Pick<NginxHTTPRequest, 'warn'>): void {
  warnProblems({ warn: function (msg: string) { log.warn(LOG_PREFIX + msg); } }, ensureLoaded());
}

/**
 * Active health checks, as data: how one probe result moves a server's state, and what a model's
 * status is given its upstream's servers. The js_periodic refresher (handlers/refresh.ts) probes
 * `GET http://<server>/health` (vLLM answers 200 when its engine is alive) and stores the states in
 * the `gw_health` number zone; routing, /readyz, /v1/metadata and /metrics read them.
 *
 * Server states: 1 up, 0 down, -1 unknown (never probed, or cannot be probed: a hostname with no
 * `resolver`). A server that was up goes down after FALL consecutive failed probes, so one slow
 * probe does not take a model out; a server with no good probe yet goes down at its first failure;
 * one good probe brings any server up.
 */

export const UP = 1;
export const DOWN = 0;
export const UNKNOWN = -1;

/** Consecutive failures that take an up server down. */
export const FALL = 2;

/**
 * Health data older than this is ignored (routing treats every model as healthy): the refresher
 * is not running (the js_periodic location was left out, or nginx stopped it), so the data says
 * nothing about now. It must stay well above the js_periodic interval (2 s in discovery-server.conf).
 */
export const STALE_MS = 30000;

/** Seconds a client is told to wait (Retry-After) when a model has no healthy backend. */
export const RETRY_AFTER_S = 5;

export type ProbeResult = 'ok' | 'fail' | 'unprobeable';

export interface ServerHealth {
  state: number;
  fails: number;
}

export function nextHealth(prev: ServerHealth, probe: ProbeResult): ServerHealth {
  if (probe === 'ok') return { state: UP, fails: 0 };
  if (probe === 'unprobeable') return { state: UNKNOWN, fails: 0 };
  const fails = prev.fails + 1;
  if (prev.state === UP && fails < FALL) return { state: UP, fails: fails };
  return { state: DOWN, fails: fails };
}

/** A probe's outcome from its HTTP status, or from the error ngx.fetch rejected with (status 0). */
export function classifyProbe(status: number, error: string): ProbeResult {
  if (error !== '') return /resolver/i.test(error) ? 'unprobeable' : 'fail';
  return status >= 200 && status < 300 ? 'ok' : 'fail';
}

export type Status = 'up' | 'down' | 'unknown';

/** An upstream is up when any server is up, down when every server is down, else unknown. */
export function upstreamStatus(states: number[]): Status {
  let down = 0;
  for (let i = 0; i < states.length; i++) {
    if (states[i] === UP) return 'up';
    if (states[i] === DOWN) down++;
  }
  return states.length > 0 && down === states.length ? 'down' : 'unknown';
}

export function statusCode(s: Status): number {
  return s === 'up' ? UP : s === 'down' ? DOWN : UNKNOWN;
}

export function statusName(code: number | undefined): Status {
  return code === UP ? 'up' : code === DOWN ? 'down' : 'unknown';
}

/** True when health data written at `tick` (ms) still describes `now`. */
export function healthFresh(tick: number | undefined, now: number): boolean {
  return tick !== undefined && now - tick <= STALE_MS;
}

/** What the read-side endpoints know about backend health (ngx/health.ts reads it from the zone). */
export interface ServerView {
  address: string;
  status: Status;
  /** Unix seconds of the last probe, or null. */
  checked_at: number | null;
  error: string | null;
}

export interface HealthView {
  /** False when the refresher has not run lately: every status below is then "unknown". */
  active: boolean;
  /** Unix seconds of the last completed round, or null. */
  checked_at: number | null;
  upstreams: { [name: string]: { status: Status; servers: ServerView[] } };
}

export type ReadyPolicy = 'all' | 'any';

/**
 * /readyz: with policy "all" (default) ready when no model is down, i.e. routing would refuse no
 * model for health reasons ("unknown" does not block: routing still tries it); with "any", ready
 * when at least one model is not down.
 */
export function ready(statuses: Status[], policy: ReadyPolicy): boolean {
  let down = 0;
  for (let i = 0; i < statuses.length; i++) if (statuses[i] === 'down') down++;
  return policy === 'any' ? down < statuses.length || statuses.length === 0 : down === 0;
}

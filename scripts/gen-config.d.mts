// Types for gen-config.mjs, which stays plain JS so the build runs it without a TypeScript loader.
export interface NormalizedConfig {
  upstreams: Record<string, { servers: string[]; keepalive: number; max_fails: number; fail_timeout_ms: number; keepalive_timeout_ms: number; api_key_env: string }>;
  models: Record<string, { upstream: string; capabilities: string[]; max_inflight: number; max_queue: number; queue_timeout_ms: number; slot_lease_ms: number; owned_by: string; created: number }>;
  aliases: Record<string, string>;
  /** gateway.json "jwt", normalized (scripts/jwt-config.mjs; njs/src/core/jwt.ts JwtConfig). */
  jwt: Record<string, unknown>;
}
export const CAPABILITIES: string[];
export function parseDuration(v: unknown, what: string): number;
export function normalizeConfig(raw: unknown, source?: string): NormalizedConfig;
/** `dir`: the absolute path nginx finds the routes folder at; adds the js_preload_object of gw-routes.json. */
/** `opts.resolve`: a zone per upstream and `resolve` on host-name servers (nginx >= 1.27.3, needs a `resolver`). */
export function renderRoutesConf(cfg: NormalizedConfig, source: string, dir?: string, opts?: { resolve?: boolean }): string;
export function renderRoutesJson(cfg: NormalizedConfig): string;
export function renderRoutesModule(cfg: NormalizedConfig, source: string): string;
export function loadConfig(path: string): NormalizedConfig;
export function renderConfig(path: string, outdir: string): NormalizedConfig;
export function renderConfigObject(raw: unknown, outdir: string, source?: string): NormalizedConfig;

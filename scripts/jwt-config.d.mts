// Types for jwt-config.mjs (plain JS so the build runs it without a TypeScript loader).
export function normalizeJwtConfig(raw: unknown, source?: string): Record<string, unknown>;

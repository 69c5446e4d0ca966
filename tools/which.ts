import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** The first `name` on PATH, or null: how findNginx and findLlama look for a system install. */
export function which(name: string): string | null {
  for (const d of (process.env.PATH ?? '').split(':')) {
    const p = join(d, name);
    if (d && existsSync(p)) return p;
  }
  return null;
}

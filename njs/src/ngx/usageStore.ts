/**
 * The usage ledger over the `gw_usage` shared dict (declared in nginx/logging-http.conf; layout in
 * core/usageLedger.ts). Every write is an atomic `incr`, so all workers add into the same counters.
 * When the zone is not declared (logging-http.conf not included) recording is a no-op.
 */
import { Fact } from '../core/endFacts';
import { addToLedger, LedgerFilter, LedgerRow, ledgerRows, keysOfDay } from '../core/usageLedger';

export const USAGE_ZONE = 'gw_usage';

function zone(): NgxSharedDict<number> | null {
  const d = ngx.shared[USAGE_ZONE];
  return d !== undefined ? (d as NgxSharedDict<number>) : null;
}

/**
 * Adds one finished request to the ledger (log phase; handlers/requestEnd.ts runs it once per
 * request; `p`: split $gw_end_facts, core/usageLedger.ts addToLedger).
 */
export function recordUsage(p: string[], keyId: string): void {
  if (p[Fact.model] === '') return; // never routed: nothing to add (core/usageLedger.ts)
  const d = ngx.shared[USAGE_ZONE];
  if (d !== undefined) addToLedger(d as NgxSharedDict<number>, p, keyId);
}

export function readUsage(f: LedgerFilter): { rows: LedgerRow[]; capacity: number; free: number } | null {
  const d = zone();
  if (d === null) return null;
  return { rows: ledgerRows(d.items(d.size() + 1) as [string, number][], f), capacity: d.capacity, free: d.freeSpace() };
}

/** Deletes one day's counters, or everything; returns how many counters were removed. */
export function resetUsage(day: string | undefined): number | null {
  const d = zone();
  if (d === null) return null;
  if (day === undefined) {
    const n = d.size();
    d.clear();
    return n;
  }
  const keys = keysOfDay(d.keys(d.size() + 1), day);
  let n = 0;
  for (let i = 0; i < keys.length; i++) if (d.delete(keys[i])) n++;
  return n;
}

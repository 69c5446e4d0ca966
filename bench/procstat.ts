/**
 * CPU time and memory of processes, read from /proc (Linux only; elsewhere every reading is null and
 * the reports show "n/a"). nginx workers are found as the children of the master.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';

let tick = 0;
/** Clock ticks per second (utime/stime unit in /proc/<pid>/stat). */
export function clockTick(): number {
  if (tick) return tick;
  try {
    tick = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    tick = 100;
  }
  return tick;
}

export const procAvailable = existsSync('/proc/self/stat');

/** Fields of /proc/<pid>/stat after the ")" that closes the command name (field 3 is index 0). */
function statFields(pid: number): string[] | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** Children of `ppid` (scan of /proc; /proc/<pid>/task/<pid>/children is not always compiled in). */
export function childPids(ppid: number): number[] {
  if (!procAvailable) return [];
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const f = statFields(Number(d));
    if (f && Number(f[1]) === ppid) out.push(Number(d));
  }
  return out.sort((a, b) => a - b);
}

/** utime + stime of the processes in ms; null when /proc cannot tell. */
export function cpuMs(pids: number[]): number | null {
  if (!procAvailable || pids.length === 0) return null;
  let ticks = 0;
  for (const p of pids) {
    const f = statFields(p);
    if (!f) return null;
    ticks += Number(f[11]) + Number(f[12]);
  }
  return (ticks * 1000) / clockTick();
}

function statusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number | null {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Sum of one /proc/<pid>/status field (kB) over the processes, in MB; null when /proc cannot tell. */
function sumStatusMb(pids: number[], field: 'VmRSS' | 'VmHWM'): number | null {
  if (!procAvailable || pids.length === 0) return null;
  let kb = 0;
  for (const p of pids) {
    const v = statusKb(p, field);
    if (v === null) return null;
    kb += v;
  }
  return kb / 1024;
}

/** Sum of resident memory (MB) of the processes right now. */
export function rssMb(pids: number[]): number | null {
  return sumStatusMb(pids, 'VmRSS');
}

/** Largest per-process high-water mark of resident memory (MB) since the process started. */
export function peakRssMb(pids: number[]): number | null {
  if (!procAvailable || pids.length === 0) return null;
  let max = 0;
  for (const p of pids) max = Math.max(max, statusKb(p, 'VmHWM') ?? 0);
  return max / 1024;
}

/** Sum of the processes' resident-memory high-water marks (MB); null when /proc cannot tell. */
export function peakRssSumMb(pids: number[]): number | null {
  return sumStatusMb(pids, 'VmHWM');
}

/**
 * Resets the processes' VmHWM to their current RSS (`echo 5 > /proc/<pid>/clear_refs`, Linux >= 4.0;
 * needs the right to write it: the same user or root). False when any reset failed.
 */
export function resetPeakRss(pids: number[]): boolean {
  if (!procAvailable || pids.length === 0) return false;
  let ok = true;
  for (const p of pids) {
    try {
      writeFileSync(`/proc/${p}/clear_refs`, '5');
    } catch {
      ok = false;
    }
  }
  return ok;
}

/** Samples the summed RSS of `pids()` every `everyMs` until stopped; returns the largest seen (MB). */
export function rssSampler(pids: () => number[], everyMs = 100): { stop(): number | null } {
  let peak: number | null = null;
  const sample = () => {
    const v = rssMb(pids());
    if (v !== null) peak = Math.max(peak ?? 0, v);
  };
  sample();
  const t = setInterval(sample, everyMs);
  return {
    stop() {
      clearInterval(t);
      sample();
      return peak;
    },
  };
}

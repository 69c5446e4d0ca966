/**
 * vitest globalSetup of the integration project: gives the run a private temp folder (TMPDIR, which
 * the test workers inherit, so every nginx prefix and probe folder of this run lies inside it) and,
 * at the end, fails the run if any process still holds that folder: an nginx master or worker (or a
 * mock) a test started and did not stop. Such processes are killed, then reported.
 */
import { chmodSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Processes (other than this one) whose command line or open files name `marker`. */
export function processesHolding(marker: string): { pid: number; cmd: string }[] {
  const out: { pid: number; cmd: string }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
    } catch {
      continue;
    }
    let holds = cmd.includes(marker);
    if (!holds) {
      try {
        for (const fd of readdirSync(`/proc/${name}/fd`)) {
          let target = '';
          try { target = readlinkSync(`/proc/${name}/fd/${fd}`); } catch { continue; }
          if (target.startsWith(marker)) { holds = true; break; }
        }
      } catch {
        // a process that exited meanwhile, or one we may not inspect
      }
    }
    if (holds) out.push({ pid: Number(name), cmd });
  }
  return out;
}

export default function setup(): () => void {
  const runDir = mkdtempSync(join(tmpdir(), 'gw-run-'));
  // nginx workers drop root to `nobody` and read files the tests put under it (keys, routes).
  chmodSync(runDir, 0o755);
  process.env.TMPDIR = runDir;
  process.env.GW_TEST_RUN_DIR = runDir;
  return () => {
    const left = process.platform === 'linux' ? processesHolding(runDir) : [];
    for (const p of left) {
      try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone already */ }
    }
    rmSync(runDir, { recursive: true, force: true });
    if (left.length) {
      // vitest reports an error thrown here but still exits 0; the exit code must say it too.
      process.exitCode = 1;
      throw new Error(`processes started by this test run were still running at its end (killed now):\n${left.map((p) => `  ${p.pid} ${p.cmd}`).join('\n')}\nA test or harness path does not stop what it starts (test/support/useGateway.ts, stack.ts).`);
    }
  };
}

/**
 * vitest wiring for a gateway stack: started in beforeAll, stopped in afterAll. After every test the
 * nginx error log written during that test must hold no [alert], [emerg], worker crash or njs
 * exception (Test::Nginx's no_error_log); a failing test gets the nginx logs appended.
 */
import { afterAll, afterEach, beforeAll, beforeEach, expect, onTestFailed } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { invalidLogBytes } from './logSchema';
import { BAD_LOG, newLifetime } from '../../tools/nginx';
import { Stack, StackOptions, startStack } from '../../tools/stack';

export { BAD_LOG };

export interface GatewayRef extends Stack {
  /** Error-log text written since the current test began. */
  errorLogSinceTestStart(): string;
  /** Opt out of the clean-log check for this test (a test that provokes an alert on purpose). */
  allowErrorLog(re: RegExp): void;
}

function accessBytes(ref: GatewayRef): Buffer {
  const p = join(ref.prefix, 'logs/access.log');
  return existsSync(p) ? readFileSync(p) : Buffer.alloc(0);
}

export function useGateway(opts: StackOptions | (() => StackOptions)): GatewayRef {
  const ref = {} as GatewayRef;
  let mark = 0;
  let allowed: RegExp | null = null;
  let accessMark = 0;
  // Owned here, not by the stack: when beforeAll times out, startStack is still running and ref is
  // still empty, yet afterAll must stop the nginx and mocks it has started (and any it starts later).
  const life = newLifetime();
  beforeAll(async () => {
    const stack = await startStack(typeof opts === 'function' ? opts() : opts, life);
    Object.assign(ref, stack);
    ref.restart = async () => {
      await stack.restart();
      ref.nginx = stack.nginx;
      mark = 0;
    };
    ref.errorLogSinceTestStart = () => stack.nginx.errorLog().slice(mark);
    ref.allowErrorLog = (re: RegExp) => { allowed = re; };
  }, 60_000);
  afterAll(async () => {
    await life.close();
  }, 30_000);
  beforeEach(() => {
    allowed = null;
    if (ref.nginx) mark = ref.nginx.errorLog().length;
    // From the end of the last whole line: a line nginx is writing right now belongs to this test's check.
    if (ref.nginx) accessMark = completeLength(accessBytes(ref));
    onTestFailed(() => {
      if (!ref.nginx) return;
      const err = ref.nginx.errorLog().slice(mark).split('\n').slice(-60).join('\n');
      const acc = ref.nginx.accessLog().split('\n').slice(-20).join('\n');
      console.error(`--- nginx error.log (this test) ---\n${err}\n--- nginx access.log (last 20) ---\n${acc}`);
    });
  });
  afterEach(() => {
    if (!ref.nginx) return;
    const bad = ref.errorLogSinceTestStart().split('\n').filter((l) => BAD_LOG.test(l) && !(allowed?.test(l)));
    expect(bad, 'nginx error.log must stay clean').toEqual([]);
    // Every access-log line this test produced must match nginx/log-schema.json (when the config
    // logs gw_json to logs/access.log; a line nginx writes after this check is seen by the next test).
    if (/logs\/access\.log gw_json;/.test(readFileSync(ref.nginx.confPath, 'utf8'))) {
      // As bytes: a strict UTF-8 decode per line, not readFileSync's U+FFFD for bad bytes.
      // Whole lines only: a line of over a page reaches the file in two steps, and a read between
      // them sees half of it (the next test checks it whole).
      const log = accessBytes(ref);
      const whole = log.subarray(0, completeLength(log));
      expect(invalidLogBytes(whole.length >= accessMark ? whole.subarray(accessMark) : whole), 'access.log lines must be UTF-8 and match nginx/log-schema.json').toEqual([]);
    }
  });
  return ref;
}

/** Length of `log` up to and including its last newline: the lines nginx has finished writing. */
function completeLength(log: Buffer): number {
  return log.lastIndexOf(0x0a) + 1;
}

/**
 * The access-log contract: every line nginx writes with log_format gw_json must be a JSON object
 * valid against nginx/log-schema.json. useGateway checks the lines each test produced; the
 * logging tests read single lines by request id.
 */
import { Ajv } from 'ajv';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { nginxDir } from '../../tools/config';
import { eventually } from './eventually';

export const logSchema = JSON.parse(readFileSync(join(nginxDir, 'log-schema.json'), 'utf8'));

const ajv = new Ajv({ allErrors: true, strict: true });
const validate = ajv.compile(logSchema);

export type LogLine = Record<string, unknown>;

/** Problems of one line: [] when it is a schema-valid JSON object. */
export function logLineProblems(line: string): string[] {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (e) {
    return [`not JSON (${(e as Error).message}): ${line.slice(0, 300)}`];
  }
  if (validate(v)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}: ${line.slice(0, 300)}`);
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Problems of an access log read as bytes: every line must be valid UTF-8 (a strict decoder, not
 * one that swaps bad bytes for U+FFFD as readFileSync(..., 'utf8') does), then a schema-valid JSON
 * object.
 */
export function invalidLogBytes(log: Buffer): string[] {
  const out: string[] = [];
  let start = 0;
  while (start < log.length) {
    let end = log.indexOf(0x0a, start);
    if (end < 0) end = log.length;
    const bytes = log.subarray(start, end);
    start = end + 1;
    if (bytes.length === 0) continue;
    let text: string;
    try {
      text = strictUtf8.decode(bytes);
    } catch {
      out.push(`not UTF-8: ${bytes.toString('latin1').slice(0, 300)}`);
      continue;
    }
    out.push(...logLineProblems(text));
  }
  return out;
}

/** Problems of every non-empty line of an access-log text. */
export function invalidLogLines(text: string): string[] {
  const out: string[] = [];
  for (const l of text.split('\n')) if (l.trim() !== '') out.push(...logLineProblems(l));
  return out;
}

/** Lines of an access-log text, parsed (lines that are not JSON are skipped). */
export function parseLogLines(text: string): LogLine[] {
  const out: LogLine[] = [];
  for (const l of text.split('\n')) {
    if (l.trim() === '') continue;
    try {
      out.push(JSON.parse(l));
    } catch {
      // invalidLogLines reports these
    }
  }
  return out;
}

/**
 * Waits for the log line of `requestId` (nginx writes it after the response ended, so it may lag
 * the client by a moment) and returns it parsed.
 */
export async function waitForLogLine(readLog: () => string, requestId: string): Promise<LogLine> {
  return eventually(() => {
    const hit = parseLogLines(readLog()).filter((l) => l.request_id === requestId);
    if (hit.length === 0) throw new Error(`no access-log line with request_id ${requestId}`);
    return hit[hit.length - 1];
  });
}

/** Whether a Docker engine answers (the `docker` client alone is not enough). Cached per process. */
import { getContainerRuntimeClient } from 'testcontainers';

let answer: Promise<string | null> | undefined;

/** null when an engine answers, else the reason none does (for the skip message). */
export function dockerUnavailable(): Promise<string | null> {
  if (!answer) {
    answer = getContainerRuntimeClient()
      .then(() => null)
      .catch((e: Error) => `no Docker engine answers (${String(e.message).split('\n')[0]})`);
  }
  return answer;
}

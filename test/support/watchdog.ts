// Shared by the detached watchdogs (reaper.ts for processes, node-reaper.ts for the real node):
// waiting for the process that started them to be gone, even by SIGKILL.
import { existsSync } from 'node:fs';

/** Whether a process with this pid exists (signal 0 checks without signalling). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Checks every second: once `dir` is gone (a normal teardown removed it) the watchdog just stops;
 * once `parent` is gone it stops and calls `onParentGone` once.
 */
export function whenParentGone(parent: number, dir: string, onParentGone: () => void): void {
  const timer = setInterval(() => {
    if (!existsSync(dir)) {
      clearInterval(timer);
      return;
    }
    if (alive(parent)) return;
    clearInterval(timer);
    onParentGone();
  }, 1000);
}

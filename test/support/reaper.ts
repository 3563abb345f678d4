// Watchdog started detached by control-plane.ts (and operator.ts, for each operator child): when
// the process that started them is gone (even by SIGKILL) it kills the processes listed in
// <dir>/pids and removes <dir>.
// It exits by itself once <dir> is removed by a normal teardown.
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { alive, whenParentGone } from './watchdog.ts';

const [parentArg, dir] = process.argv.slice(2);
const parent = Number(parentArg);
if (!parent || !dir) process.exit(2);

whenParentGone(parent, dir, () => {
  let pids: number[] = [];
  try {
    pids = readFileSync(join(dir, 'pids'), 'utf8').split('\n').map(Number).filter(Boolean);
  } catch {}
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  // Give the kernel a moment to release files before removing the directory.
  setTimeout(() => rmSync(dir, { recursive: true, force: true }), 500);
});

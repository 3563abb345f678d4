// Watchdog started detached by node.ts: when the process that started the node is gone (even by
// SIGKILL) it tears the node down (node-teardown.ts) and removes <dir>, as reaper.ts does for the
// control plane; what could not be removed is written to <dir>.leftovers. It exits by itself
// once <dir> is removed by a normal teardown.
import { writeFileSync } from 'node:fs';
import { tearDownNode } from './node-teardown.ts';
import { whenParentGone } from './watchdog.ts';

const [parentArg, dir] = process.argv.slice(2);
const parent = Number(parentArg);
if (!parent || !dir) process.exit(2);

whenParentGone(parent, dir, () => {
  void tearDownNode(dir).then((left) => {
    if (left.length > 0) writeFileSync(`${dir}.leftovers`, `${left.join('\n')}\n`);
  });
});

// Summarises a sampling heap profile (.heapprofile, e.g. from bench/operator/alloc-profile.ts):
// bytes allocated per function, self and inclusive, largest first.
//   node bench/operator/alloc-summary.ts <file.heapprofile> [rows]
import { readFileSync } from 'node:fs';

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

const [file, rowsArg] = process.argv.slice(2);
if (!file) throw new Error('usage: alloc-summary.ts <file.heapprofile> [rows]');
const rows = Number(rowsArg ?? 30);
const { head } = JSON.parse(readFileSync(file, 'utf8')) as { head: ProfileNode };
const label = (n: ProfileNode) =>
  `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/^.*\/(node_modules\/)?/, '')}:${n.callFrame.lineNumber + 1}`;
const self = new Map<string, number>();
const inclusive = new Map<string, number>();
let total = 0;
// Iterative walk with the labels on the path, so recursion is counted once per stack.
const stack: Array<{ node: ProfileNode; path: Set<string> }> = [{ node: head, path: new Set() }];
while (stack.length > 0) {
  const { node, path } = stack.pop()!;
  const l = label(node);
  const here = new Set(path).add(l);
  total += node.selfSize;
  self.set(l, (self.get(l) ?? 0) + node.selfSize);
  for (const p of here) inclusive.set(p, (inclusive.get(p) ?? 0) + node.selfSize);
  for (const child of node.children) stack.push({ node: child, path: here });
}
const show = (m: Map<string, number>) =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, rows)
    .map(([l, b]) => `${(b / 2 ** 20).toFixed(1).padStart(9)} MiB ${((100 * b) / total).toFixed(1).padStart(5)}%  ${l}`)
    .join('\n');
console.log(
  `${(total / 2 ** 20).toFixed(1)} MiB sampled in all\n-- self --\n${show(self)}\n-- inclusive --\n${show(inclusive)}`,
);

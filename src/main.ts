#!/usr/bin/env node
// Entry point of the container image and the `readygate` bin: wiring only. The Node.js version
// is checked before the command line is imported (a dynamic import, so that nothing else loads
// first): an older Node.js gets one line and exit code 2 instead of a crash inside a dependency.
import { unsupportedNode } from './node-version.ts';

const tooOld = unsupportedNode(process.version);
if (tooOld) {
  process.stderr.write(`${tooOld}\n`);
  process.exit(2);
}
const { main } = await import('./cli/main.ts');
process.exitCode = await main(process.argv.slice(2));

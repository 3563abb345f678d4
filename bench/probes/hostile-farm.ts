// The hostile targets of test/support/hostile-targets.ts in a child process of their own, so the
// benchmark (bench/probes/hostile.ts) counts the prober's CPU and memory, not theirs.
//   usage: node bench/probes/hostile-farm.ts ['<HostileFarmOptions as JSON>']
// Prints one JSON line (targets, stand-in address, heldBytes), then answers lines on stdin:
// "release" sends the rest of every held largest answer; "stand-in" prints the number of
// connections the API-server stand-in received. Closes everything and exits when stdin ends
// (or after 30 min at most).
import { createInterface } from 'node:readline';
import { type HostileFarmOptions, startHostileFarm } from '../../test/support/hostile-targets.ts';

const options = JSON.parse(process.argv[2] ?? '{}') as HostileFarmOptions;
const farm = await startHostileFarm(options);
const { targets, standIn, heldBytes } = farm;
process.stdout.write(
  `${JSON.stringify({ targets, standIn: { host: standIn.host, port: standIn.port }, heldBytes })}\n`,
);

const stop = async (): Promise<void> => {
  await farm.close();
  process.exit(0);
};
createInterface({ input: process.stdin }).on('line', (line) => {
  const command = line.trim();
  if (command === 'release') farm.release();
  else if (command === 'stand-in') process.stdout.write(`${farm.standIn.connections()}\n`);
  else process.stderr.write(`hostile-farm: unknown command ${JSON.stringify(command)}\n`);
});
process.stdin.on('end', () => void stop());
setTimeout(() => void stop(), 30 * 60_000).unref();

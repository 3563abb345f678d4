// CLI start-up benchmark (`npm run bench:cli`, `-- --quick` for a CI-sized run).
// Spawns `node src/main.ts version`, `node src/main.ts --help` and `node -e 0` (the floor: what
// any Node.js program pays before its first line), interleaved so that noise on this shared
// machine falls on all three alike, and prints each command's median wall time and its ratio to
// the floor's. No assertions: figures only.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const quick = process.argv.includes('--quick');
const RUNS = quick ? 5 : 21;
const ENTRY = fileURLToPath(new URL('../src/main.ts', import.meta.url));

const COMMANDS: Array<{ name: string; args: string[] }> = [
  { name: 'node -e 0 (floor)', args: ['-e', '0'] },
  { name: 'readygate version', args: [ENTRY, 'version'] },
  { name: 'readygate --help', args: [ENTRY, '--help'] },
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Wall time of one run, in ms; a failing command ends the benchmark (its time would mean nothing). */
function timeOnce(args: string[]): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return ms;
}

const times = COMMANDS.map(() => [] as number[]);
// One warm-up round fills the page cache; it is not counted.
for (const c of COMMANDS) timeOnce(c.args);
for (let i = 0; i < RUNS; i++) {
  for (const [k, c] of COMMANDS.entries()) times[k]!.push(timeOnce(c.args));
}

const floor = median(times[0]!);
console.log(`CLI start-up, node ${process.version}, median of ${RUNS} interleaved runs (wall ms)\n`);
console.log('| command | median ms | min ms | max ms | ÷ floor |');
console.log('| --- | ---: | ---: | ---: | ---: |');
for (const [k, c] of COMMANDS.entries()) {
  const t = times[k]!;
  const m = median(t);
  const row = [c.name, m.toFixed(0), Math.min(...t).toFixed(0), Math.max(...t).toFixed(0), (m / floor).toFixed(2)];
  console.log(`| ${row.join(' | ')} |`);
}

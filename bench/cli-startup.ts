// CLI start-up benchmark (`npm run bench:cli`, `-- --quick` for a CI-sized run).
// Spawns `readygate version` and `readygate --help` from the sources (`node src/main.ts`) and
// from the build the package's bin runs (`node dist/main.js`, compiled into a temp dir), next to
// `node -e 0` (the floor: what any Node.js program pays before its first line) and an empty .ts
// file (what Node's type stripping adds to any .ts entry). Runs are interleaved so that noise on
// this shared machine falls on all alike; prints each command's median wall time and its ratio to
// the floor's. No assertions: figures only.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const quick = process.argv.includes('--quick');
const RUNS = quick ? 5 : 21;
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SOURCE = join(ROOT, 'src/main.ts');

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

/**
 * Compiles src/ as `npm run build` does, into dir/dist next to a copy of package.json and a link
 * to node_modules: the layout of the installed bin, whatever the CLI imports at start-up.
 */
function build(dir: string): string {
  execFileSync('npm', ['run', '--silent', 'build', '--', '--outDir', join(dir, 'dist')], {
    cwd: ROOT,
    stdio: 'inherit',
  });
  copyFileSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  writeFileSync(join(dir, 'empty.ts'), 'export {};\n');
  return join(dir, 'dist/main.js');
}

/** Median wall ms of each command, over RUNS interleaved rounds after one warm-up round (page cache). */
function measure(commands: Array<{ args: string[] }>): number[][] {
  const times = commands.map(() => [] as number[]);
  for (const c of commands) timeOnce(c.args);
  for (let i = 0; i < RUNS; i++) {
    for (const [k, c] of commands.entries()) times[k]!.push(timeOnce(c.args));
  }
  return times;
}

const dir = mkdtempSync(join(tmpdir(), 'readygate-cli-bench-'));
let COMMANDS: Array<{ name: string; args: string[] }>;
let times: number[][];
try {
  const built = build(dir);
  COMMANDS = [
    { name: 'node -e 0 (floor)', args: ['-e', '0'] },
    { name: 'node empty.ts (type-stripping floor)', args: [join(dir, 'empty.ts')] },
    { name: 'node src/main.ts version', args: [SOURCE, 'version'] },
    { name: 'node src/main.ts --help', args: [SOURCE, '--help'] },
    { name: 'node dist/main.js version (the bin)', args: [built, 'version'] },
    { name: 'node dist/main.js --help (the bin)', args: [built, '--help'] },
  ];
  times = measure(COMMANDS);
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const floor = median(times[0]!);
console.log(`\nCLI start-up, node ${process.version}, median of ${RUNS} interleaved runs (wall ms)\n`);
console.log('| command | median ms | min ms | max ms | ÷ floor |');
console.log('| --- | ---: | ---: | ---: | ---: |');
for (const [k, c] of COMMANDS.entries()) {
  const t = times[k]!;
  const m = median(t);
  const row = [c.name, m.toFixed(0), Math.min(...t).toFixed(0), Math.max(...t).toFixed(0), (m / floor).toFixed(2)];
  console.log(`| ${row.join(' | ')} |`);
}

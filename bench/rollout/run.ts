// The rollout overhead figure on its own, without the probe engine and its peers:
//   node bench/rollout/run.ts [--quick]
// Runs bench/figures/rollout.ts, prints its row, and writes bench/results/<date>-rollout.json
// (-rollout-quick.json for --quick, which git ignores). `npm run bench` runs the same source.
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import rolloutSource from '../figures/rollout.ts';
import { type BenchContext, figures } from '../figures.ts';
import { describeCommit } from '../git.ts';
import { figuresTable } from '../run.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
  const started = performance.now();
  const log = (m: string) => console.error(m);
  const ctx: BenchContext = { quick: values.quick, peersDir: '', root, log, details: {} };
  await rolloutSource.run(ctx);
  const seconds = (performance.now() - started) / 1000;
  const date = new Date().toISOString().slice(0, 10);
  const command = `node bench/rollout/run.ts${values.quick ? ' --quick' : ''}`;
  console.log(`\n${figuresTable(figures)}\n`);
  const dir = path.join(root, 'bench', 'results');
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `${date}-rollout${values.quick ? '-quick' : ''}.json`);
  const machine = {
    nproc: os.availableParallelism(),
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
  };
  await writeFile(
    file,
    `${JSON.stringify(
      {
        date,
        commit: describeCommit(root, ['src', 'bench/rollout', 'bench/figures']),
        command,
        quick: values.quick,
        seconds,
        machine,
        figures,
        rollout: ctx.details.rollout,
      },
      null,
      2,
    )}\n`,
  );
  log(`wrote ${path.relative(root, file)}`);
  log(`done in ${seconds.toFixed(1)} s`);
}

if (import.meta.main) await main();

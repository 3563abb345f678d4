// The operator-level figures on their own, without the probe engine and its peers:
//   node bench/operator/run.ts [--quick]
// Runs bench/figures/operator.ts, prints its rows, and writes bench/results/<date>-operator.json
// (-operator-quick.json for --quick) and, for a full run, bench/results/operator-growth.svg and
// bench/results/<date>-operator.md (the section of bench/RESULTS.md for these figures).
// `npm run bench` runs the same source after the engine figures.
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import operatorSource, { OVERRIDES } from '../figures/operator.ts';

import { type BenchContext, figures } from '../figures.ts';
import { describeCommit } from '../git.ts';
import { figuresTable } from '../run.ts';
import type { OperatorBenchResult } from './harness.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');

/** The Markdown section for bench/RESULTS.md. */
export function operatorSection(o: {
  date: string;
  commit: string;
  command: string;
  seconds: number;
  result: OperatorBenchResult;
}): string {
  const r = o.result;
  const opt = r.options;
  const startup = [
    '| pods | create + Running (bench) | /healthz | every pod probed once | every gate True | pod writes | peak RSS MiB | CPU s |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...r.startup.map(
      (s) =>
        `| ${s.pods.toLocaleString('en')} | ${s.createSeconds} s | ${s.healthySeconds} s | ${s.probedOnceSeconds} s | ${s.allTrueSeconds} s | ${s.auditedPodPatches.toLocaleString('en')} | ${s.peakRssMiB} | ${s.cpuSeconds.toFixed(1)} |`,
    ),
  ].join('\n');
  return `## Operator figures

Run on its own with \`${o.command}\` on ${o.date} at commit ${o.commit} (${os.availableParallelism()} CPUs,
${Math.round(os.totalmem() / 2 ** 30)} GiB, Node.js ${process.version}), ${(o.seconds / 60).toFixed(1)} min in all. Raw data:
[results/${o.date}-operator.json](results/${o.date}-operator.json); chart:
[results/operator-growth.svg](results/operator-growth.svg).

${figuresTable(figures)}

Start-up, per pod count (each in a namespace of its own, operator started with \`--namespaces\` on it):

${startup}

Method: the real operator (\`node src/main.ts run\`, default flags but \`--log-level info\`: probe
concurrency 256, \`--api-qps 200 --api-burst 400\`) under the chart's ServiceAccount and RBAC, against
the test control plane (etcd + kube-apiserver, no controller manager) on the same machine. Pods are
created already bound and reported Running with ready containers and a loopback IP by the
benchmark's pod driver (\`bench/operator/pods.ts\`, 32 in flight); their HTTP probes (\`GET /\`
every ${opt.periodSeconds} s, timeout ${opt.timeoutSeconds} s, failureThreshold ${opt.failureThreshold},
failsafe maxUnavailable 100 %) hit ${opt.sharedAddresses} + ${Math.min(50, opt.massFlip)} + ${opt.singleFlips} loopback
listeners in a child process (\`bench/operator/listeners.ts\`); a target fails by its listener closing
(connection refused). "Seen by a watch" is the benchmark's own watch on the namespace's pods.
Pod writes are counted in the kube-apiserver's audit log. Steady state, mass flip, single flips and
time to gate run in the ${opt.fleetSize.toLocaleString('en')}-pod namespace with its operator still running; single flips
are staggered (one solo target down every ~${opt.singleFlipSpacingSeconds} s), the time-to-gate batch
arrives at ${opt.gateRate} pods/s.
`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
  const started = performance.now();
  const log = (m: string) => console.error(m);
  const ctx: BenchContext = { quick: values.quick, peersDir: '', root, log, details: {} };
  await operatorSource.run(ctx);
  const seconds = (performance.now() - started) / 1000;
  const date = new Date().toISOString().slice(0, 10);
  const env = OVERRIDES.filter((k) => process.env[k]).map((k) => `${k}=${process.env[k]} `);
  const command = `${env.join('')}node bench/operator/run.ts${values.quick ? ' --quick' : ''}`;
  const sha = describeCommit(root, ['src', 'bench/operator', 'bench/figures']);
  console.log(`\n${figuresTable(figures)}\n`);
  const dir = path.join(root, 'bench', 'results');
  await mkdir(dir, { recursive: true });
  const overrides = OVERRIDES.filter((k) => process.env[k]).map((k) => `${k}=${process.env[k]}`);
  const custom = overrides.length > 0;
  const suffix = values.quick ? '-quick' : custom ? '-custom' : '';
  const file = path.join(dir, `${date}-operator${suffix}.json`);
  const result = ctx.details.operator as OperatorBenchResult;
  await writeFile(
    file,
    `${JSON.stringify({ date, commit: sha, command, quick: values.quick, seconds, figures, operator: result }, null, 2)}\n`,
  );
  log(`wrote ${path.relative(root, file)}`);
  if (!values.quick && !custom) {
    const md = path.join(dir, `${date}-operator.md`);
    await writeFile(md, operatorSection({ date, commit: sha, command, seconds, result }));
    log(`wrote ${path.relative(root, md)}`);
  }
  log(`done in ${seconds.toFixed(1)} s`);
}

if (import.meta.main) await main();

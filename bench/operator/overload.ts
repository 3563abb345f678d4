// The overload bench (issue 16 "Graceful overload"): one operator replica given more probing than
// one CPU can do, at each pod count in a control plane of its own.
//   node bench/operator/overload.ts [--sizes 30000,50000] [--period 10] [--operator-args "--probe-concurrency 64"]
//                                   [--compare-10000 <after.json> [--before <before.json>]] [--quick]
// Per size: every gate True (gives up after 15 min and reports how many were True), then, with the
// operator still saturated, 100 new pods' time to gate and a few single flips' latency; every
// second the operator's CPU, RSS, probes, gates True and the period stretch it reports
// (bench/operator/sampler.ts). --compare-10000 adds the 10,000-pod start-up of an
// operator-figures JSON (`BENCH_OPERATOR_SIZES=10000 node bench/operator/run.ts`) against the one
// behind bench/RESULTS.md. --quick: 4,000 pods at a 2 s period (2,000 probes/s, past one core on
// a 2-core machine), shorter deadlines: a few minutes, to prove the phases run.
// Writes bench/results/<date>-overload.json and <date>-overload.md (the section for
// bench/RESULTS.md); -overload-quick.* for --quick and -overload-custom.* for other options. Ctrl-C
// or SIGTERM stops the operator, the listener farm and the control plane before exiting.
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { describeCommit } from '../git.ts';
import type { OperatorBenchResult, StartupResult } from './harness.ts';
import { overloadSection, type SectionInput, startupComparison } from './overload-report.ts';
import { type OverloadOptions, runOverloadBench } from './overload-run.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The operator figures of bench/RESULTS.md. */
const RESULTS_OPERATOR_JSON = 'bench/results/2026-11-27-operator.json';

export const fullOverloadOptions: OverloadOptions = {
  quick: false,
  sizes: [30000, 50000],
  periodSeconds: 10,
  timeoutSeconds: 2,
  failureThreshold: 3,
  initialDelaySeconds: 0,
  startupDeadlineSeconds: 900,
  gateBatch: 100,
  gateRate: 10,
  gateDeadlineSeconds: 180,
  singleFlips: 5,
  singleFlipSpacingSeconds: 2,
  flipDeadlineSeconds: 300,
  checkpointSeconds: 30,
  sharedAddresses: 256,
  createConcurrency: 32,
  operatorArgs: [],
};

export const quickOverloadOptions: OverloadOptions = {
  ...fullOverloadOptions,
  quick: true,
  sizes: [4000],
  // The CRD wants timeoutSeconds < periodSeconds, so 2 s is the shortest period.
  periodSeconds: 2,
  timeoutSeconds: 1,
  startupDeadlineSeconds: 120,
  gateRate: 20,
  gateDeadlineSeconds: 60,
  singleFlips: 3,
  singleFlipSpacingSeconds: 1,
  flipDeadlineSeconds: 60,
  checkpointSeconds: 10,
};

const cli = {
  quick: { type: 'boolean', default: false },
  sizes: { type: 'string' },
  period: { type: 'string' },
  'operator-args': { type: 'string' },
  'compare-10000': { type: 'string' },
  before: { type: 'string', default: RESULTS_OPERATOR_JSON },
} as const;

/** A positive integer flag, or a clear error. */
function positive(flag: string, value: string): number {
  const x = Number(value);
  if (!Number.isInteger(x) || x <= 0) throw new Error(`--${flag}: ${JSON.stringify(value)} is not a positive integer`);
  return x;
}

/** The options of the command line; `custom` when any flag changes the preset's. */
export function overloadOptions(argv: string[]): { o: OverloadOptions; custom: boolean; compare?: [string, string] } {
  const { values: v } = parseArgs({ args: argv, options: cli, strict: true });
  const o = { ...(v.quick ? quickOverloadOptions : fullOverloadOptions) };
  if (v.sizes) o.sizes = v.sizes.split(',').map((x) => positive('sizes', x));
  if (v.period) o.periodSeconds = positive('period', v.period);
  if (o.timeoutSeconds >= o.periodSeconds)
    throw new Error(`--period: must be more than the ${o.timeoutSeconds} s timeout`);
  if (v['operator-args']) o.operatorArgs = v['operator-args'].split(/\s+/).filter(Boolean);
  const custom = Boolean(v.sizes || v.period || v['operator-args']);
  return { o, custom, ...(v['compare-10000'] ? { compare: [v.before, v['compare-10000']] } : {}) };
}

/** The 10,000-pod start-up of an operator-figures JSON (bench/operator/run.ts). */
function startupOf(file: string): StartupResult {
  const json = JSON.parse(readFileSync(path.resolve(root, file), 'utf8')) as { operator?: OperatorBenchResult };
  const st = json.operator?.startup.find((x) => x.pods === 10000);
  if (!st) throw new Error(`${file}: no 10,000-pod start-up in .operator.startup`);
  return st;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const { o, custom, compare } = overloadOptions(argv);
  const log = (m: string) => console.error(`overload: ${m}`);
  // Ctrl-C or SIGTERM: the current phase ends at once and every finally block stops what it started.
  const interrupt = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => interrupt.abort(new Error(`interrupted by ${sig}`)));
  }
  const comparison = compare && {
    before: `\`${compare[0]}\``,
    after: `\`${compare[1]}\``,
    rows: startupComparison(startupOf(compare[0]), startupOf(compare[1])),
  };
  const result = await runOverloadBench(o, log, interrupt.signal);
  const date = new Date().toISOString().slice(0, 10);
  const name = `${date}-overload${o.quick ? '-quick' : custom ? '-custom' : ''}`;
  const input: SectionInput = {
    date,
    commit: describeCommit(root, ['src', 'bench/operator']),
    command: ['node bench/operator/overload.ts', ...argv.map((a) => (/\s/.test(a) ? `'${a}'` : a))].join(' '),
    machine: `${os.availableParallelism()} CPUs, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node.js ${process.version}`,
    rawData: `results/${name}.json`,
    result,
    ...(comparison ? { comparison } : {}),
  };
  const dir = path.join(root, 'bench', 'results');
  await mkdir(dir, { recursive: true });
  const { result: _, ...header } = input;
  await writeFile(path.join(dir, `${name}.json`), `${JSON.stringify({ ...header, overload: result }, null, 2)}\n`);
  const md = overloadSection(input);
  await writeFile(path.join(dir, `${name}.md`), md);
  console.log(md);
  log(`wrote bench/results/${name}.json and .md in ${result.seconds} s`);
}

if (import.meta.main) {
  await main().catch((err: unknown) => {
    console.error(err);
    // An interrupt leaves the timers of the phase it cut short; they must not keep the process up.
    process.exit(1);
  });
}

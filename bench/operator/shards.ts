// The sharding bench (issue 14 "Measured in bench/", docs/sharding.md §4): at each pod count, on a
// control plane of its own, one sharded replica (scaled to three and back after its steady window,
// unless --no-scale) and then three, each started fresh; then one of the three SIGKILLed.
// --no-solo runs the three only (e.g. at a size where one replica's figures are already known).
//   node bench/operator/shards.ts [--sizes 50000,100000] [--replicas 3] [--buckets 16]
//                                 [--probes-per-second 1000 | --period 50] [--steady 60]
//                                 [--operator-args "..."] [--feature-gates ShardedListAndWatch=true]
//                                 [--no-scale] [--no-solo] [--startup-deadline 2400] [--tag NAME]
// The probe period is N / --probes-per-second (at least 10 s) unless --period fixes it: the
// replicas, the API server, etcd and the listeners share 2 cores here, and one replica alone must
// keep up with every target in the first half (bench/operator/shard-run.ts says what is measured).
// Writes bench/results/<date>-shards.json after each set of replicas ("partial": true until the
// end) and <date>-shards.md (the section for bench/RESULTS.md) at the end; -shards-<sizes>.* for
// other pod counts (e.g. -shards-100000), -no-solo when the single replica is left out (so such a
// run does not overwrite the full one of the day), and -custom after that when the period, replicas,
// buckets or operator flags differ from the defaults, and -sharded-watch with the API server's
// ShardedListAndWatch gate on (each sharded replica then lists and watches its buckets only).
// --tag NAME ends the name with -NAME, so a second run of a command on one day keeps the first's.
//   node bench/operator/shards.ts --report bench/results/<file>.json
// writes the section of a run cut short. Ctrl-C or SIGTERM stops the replicas, the listener farm
// and the control plane before exiting.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { describeCommit } from '../git.ts';
import { type ShardSectionInput, shardSection } from './shard-report.ts';
import { runShardBench, type ShardBenchOptions, type ShardResult } from './shard-run.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export const defaultShardOptions: ShardBenchOptions = {
  sizes: [50000],
  replicas: 3,
  buckets: 16,
  // 0.5–0.6 ms of CPU per probe at 30,000–50,000 pods for one replica (bench/RESULTS.md,
  // "Overload"): 1,000 probes/s is about 60 % of a core for it, which leaves the other core to
  // the API server, etcd and the listeners, and room for the start-up's writes.
  probesPerSecond: 1000,
  periodSeconds: 0,
  timeoutSeconds: 2,
  failureThreshold: 3,
  initialDelaySeconds: 0,
  steadyMinSeconds: 60,
  steadyPeriods: 2,
  settleSeconds: 10,
  // The chart's defaults (charts/readygate/values.yaml leaderElection).
  leaseDurationSeconds: 15,
  renewDeadlineSeconds: 10,
  retryPeriodSeconds: 2,
  leasePollMs: 250,
  createConcurrency: 32,
  sharedAddresses: 256,
  gapSample: 1024,
  scale: true,
  solo: true,
  operatorArgs: [],
};

const cli = {
  sizes: { type: 'string' },
  replicas: { type: 'string' },
  buckets: { type: 'string' },
  'probes-per-second': { type: 'string' },
  period: { type: 'string' },
  steady: { type: 'string' },
  'operator-args': { type: 'string' },
  'feature-gates': { type: 'string' },
  'no-scale': { type: 'boolean' },
  'no-solo': { type: 'boolean' },
  'startup-deadline': { type: 'string' },
  tag: { type: 'string' },
} as const;

const TAG = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** `--feature-gates A=true,B=false`, as kube-apiserver spells them, or a clear error. */
function featureGates(value: string): Record<string, boolean> {
  const gates: Record<string, boolean> = {};
  for (const term of value.split(',')) {
    const m = /^([A-Za-z0-9]+)=(true|false)$/.exec(term.trim());
    if (!m) throw new Error(`--feature-gates: ${JSON.stringify(term)} is not Name=true or Name=false`);
    gates[m[1]!] = m[2] === 'true';
  }
  return gates;
}

/** A positive integer flag, or a clear error. */
function positive(flag: string, value: string): number {
  const x = Number(value);
  if (!Number.isInteger(x) || x <= 0) throw new Error(`--${flag}: ${JSON.stringify(value)} is not a positive integer`);
  return x;
}

/** The options of the command line; `custom` when the period, replicas, buckets, operator flags or phases differ from the defaults. */
export function shardOptions(argv: string[]): { o: ShardBenchOptions; custom: boolean; tag?: string } {
  const { values: v } = parseArgs({ args: argv, options: cli, strict: true });
  const o = { ...defaultShardOptions };
  if (v.sizes) o.sizes = v.sizes.split(',').map((x) => positive('sizes', x));
  if (v.replicas) o.replicas = positive('replicas', v.replicas);
  if (v.buckets) o.buckets = positive('buckets', v.buckets);
  if (v['probes-per-second']) o.probesPerSecond = positive('probes-per-second', v['probes-per-second']);
  if (v.period) o.periodSeconds = positive('period', v.period);
  if (v.steady) o.steadyMinSeconds = positive('steady', v.steady);
  if (v['operator-args']) o.operatorArgs = v['operator-args'].split(/\s+/).filter(Boolean);
  if (v['feature-gates']) o.featureGates = featureGates(v['feature-gates']);
  if (v['no-scale']) o.scale = false;
  if (v['no-solo']) o.solo = false;
  if (v['startup-deadline']) o.startupDeadlineSeconds = positive('startup-deadline', v['startup-deadline']);
  if (v.tag !== undefined && !(TAG.test(v.tag) && v.tag.length <= 40))
    throw new Error(`--tag: ${JSON.stringify(v.tag)} is not lower-case letters, digits and '-' (at most 40)`);
  if (o.replicas < 2) throw new Error('--replicas: the second set needs at least 2 (one is killed)');
  if (o.buckets < o.replicas || o.buckets > 256) throw new Error(`--buckets: from --replicas (${o.replicas}) to 256`);
  if (o.periodSeconds > 0 && o.periodSeconds <= o.timeoutSeconds)
    throw new Error(`--period: must be more than the ${o.timeoutSeconds} s timeout`);
  const custom = Boolean(
    v.period ||
      v['probes-per-second'] ||
      v.replicas ||
      v.buckets ||
      v['operator-args'] ||
      v['feature-gates'] ||
      v['no-scale'] ||
      v['no-solo'] ||
      v['startup-deadline'],
  );
  return { o, custom, ...(v.tag ? { tag: v.tag } : {}) };
}

/** The results' file name without extension; see the module comment. */
export function resultName(o: ShardBenchOptions, custom: boolean, date: string, tag?: string): string {
  const sizes = o.sizes.join('-') === defaultShardOptions.sizes.join('-') ? '' : `-${o.sizes.join('-')}`;
  const watch = o.featureGates?.ShardedListAndWatch ? '-sharded-watch' : '';
  return `${date}-shards${sizes}${o.solo ? '' : '-no-solo'}${custom ? '-custom' : ''}${watch}${tag ? `-${tag}` : ''}`;
}

type Header = Omit<ShardSectionInput, 'result'>;

/** Writes the JSON (every set so far, `partial` until the end) and, at the end, the Markdown section. */
async function write(header: Header, result: ShardResult, partial: boolean): Promise<void> {
  const file = path.join(root, 'bench', header.rawData);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify({ ...header, partial, shards: result }, null, 2)}\n`);
  if (partial) return;
  const md = shardSection({ ...header, result });
  await writeFile(file.replace(/\.json$/, '.md'), md);
  console.log(md);
}

/** `--report <json>`: the Markdown section of a run's JSON, e.g. one cut short (partial). */
async function report(file: string): Promise<void> {
  const json = JSON.parse(await readFile(file, 'utf8')) as Header & { partial?: boolean; shards: ShardResult };
  const { shards, partial, ...header } = json;
  const md = shardSection({ ...header, result: shards, ...(partial ? { partial } : {}) });
  await writeFile(file.replace(/\.json$/, '.md'), md);
  console.log(md);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--report') return report(argv[1] ?? '');
  const { o, custom, tag } = shardOptions(argv);
  const log = (m: string) => console.error(`shards: ${m}`);
  // Ctrl-C or SIGTERM: the current phase ends at once and every finally block stops what it started.
  const interrupt = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => interrupt.abort(new Error(`interrupted by ${sig}`)));
  }
  const date = new Date().toISOString().slice(0, 10);
  const name = resultName(o, custom, date, tag);
  const header: Header = {
    date,
    // The code that runs: read at the start, not after a run of an hour.
    commit: describeCommit(root, ['src', 'bench/operator']),
    command: ['node bench/operator/shards.ts', ...argv.map((a) => (/\s/.test(a) ? `'${a}'` : a))].join(' '),
    machine: `${os.availableParallelism()} CPUs, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node.js ${process.version}`,
    rawData: `results/${name}.json`,
  };
  const result = await runShardBench(o, log, interrupt.signal, (partial) => write(header, partial, true));
  await write(header, result, false);
  log(`wrote bench/${header.rawData} and .md in ${result.seconds} s`);
}

if (import.meta.main) {
  await main().catch((err: unknown) => {
    console.error(err);
    // An interrupt leaves the timers of the phase it cut short; they must not keep the process up.
    process.exit(1);
  });
}

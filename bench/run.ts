// npm run bench [-- --quick] [-- --repetitions N --probes N --rate R --concurrency C --peers a,b --kinds tcp,http]
// Builds and caches the peers (scripts/build-bench-peers.sh), runs the probe-engine figures
// (bench/engine.ts), then every figure source in bench/figures/ (operator-level figures), prints
// the table, and writes bench/results/<date>.json. A full run also rewrites bench/RESULTS.md; a
// quick run (small N, one repetition: CI's proof that the benchmark still runs) writes
// bench/results/<date>-quick.json only, which is not committed (nor is -custom.json, from a run
// with other options).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { ProbeKind } from './engine/types.ts';
import {
  type EngineOptions,
  type EngineResult,
  fullEngineOptions,
  PEERS,
  type PeerName,
  quickEngineOptions,
  runEngineFigures,
} from './engine.ts';
import { type BenchContext, type FigureRow, figures, loadFigureSources } from './figures.ts';
import { describeCommit } from './git.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.dirname(here);

export interface MachineInfo {
  nproc: number;
  cpuModel: string;
  memoryGiB: number;
  kernel: string;
  node: string;
  go: string;
  peers: Record<string, string>;
}

/** Builds the peers if the cache lacks them and returns their directory and the build time. */
export function buildPeers(log: (m: string) => void): { peersDir: string; seconds: number } {
  const start = performance.now();
  const out = execFileSync('bash', [path.join(root, 'scripts', 'build-bench-peers.sh')], {
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
  });
  const seconds = (performance.now() - start) / 1000;
  log(`peers ready in ${seconds.toFixed(1)} s`);
  return { peersDir: out.trim().split('\n').pop()!, seconds };
}

/** What the figures were measured on. */
export function machineInfo(peersDir: string): MachineInfo {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const versions = JSON.parse(readFileSync(path.join(peersDir, 'versions.json'), 'utf8')) as Record<string, string>;
  return {
    nproc: os.availableParallelism(),
    cpuModel: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    go: versions.go ?? 'unknown',
    peers: {
      kubelet: `k8s.io/kubernetes ${versions.kubernetes} pkg/probe/http, pkg/probe/tcp`,
      blackbox: `github.com/prometheus/blackbox_exporter ${versions.blackbox_exporter}`,
      floor: 'tools/bench/floor (Go, SO_LINGER 0)',
    },
  };
}

const fmt = (x: number | null | undefined, digits = 1) =>
  x === null || x === undefined || Number.isNaN(x) ? '–' : x.toFixed(digits);
const pairs = (r: Record<string, number> | undefined, digits: number) =>
  r
    ? Object.entries(r)
        .map(([k, v]) => `${k} ${fmt(v, digits)}`)
        .join(' · ')
    : '';

/** The results table, as Markdown (it reads as well in a terminal). */
export function figuresTable(rows: FigureRow[]): string {
  const lines = [
    '| figure | readygate | peers, same run | readygate ÷ peer | goal | met |',
    '| --- | --- | --- | --- | --- | --- |',
  ];
  for (const r of rows) {
    const met = r.met === undefined ? '' : r.met ? 'yes' : 'no';
    const note = r.note ? ` (${r.note})` : '';
    lines.push(
      `| ${r.figure} | ${fmt(r.value)} ${r.unit}${note} | ${pairs(r.peers, 1)} | ${pairs(r.ratios, 2)} | ${r.goal ?? ''} | ${met} |`,
    );
  }
  return lines.join('\n');
}

/** One line per peer and kind: the medians and spreads behind the figures. */
export function engineTable(result: EngineResult): string {
  const lines = [
    '| kind | peer | CPU-ms / 1,000 probes, median [min–max] | user | sys | peak RSS MiB | start lateness p99 ms | answers |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const s of result.summary) {
    lines.push(
      `| ${s.kind} | ${s.peer} | ${fmt(s.cpuMsPer1000.median)} [${fmt(s.cpuMsPer1000.min)}–${fmt(s.cpuMsPer1000.max)}] | ` +
        `${fmt(s.userMsPer1000)} | ${fmt(s.sysMsPer1000)} | ${fmt(s.maxRssKiB.median / 1024)} | ${fmt(s.latenessP99Ms, 2)} | ` +
        `${s.correct ? 'all as expected' : 'WRONG'} |`,
    );
  }
  return lines.join('\n');
}

/** bench/RESULTS.md: machine, command, the figures and the engine's per-peer detail, and the method. */
export function resultsMarkdown(o: {
  date: string;
  commit: string;
  command: string;
  machine: MachineInfo;
  engine: EngineResult | undefined;
  seconds: number;
}): string {
  const m = o.machine;
  const e = o.engine;
  const opts = e?.options;
  return `# Benchmark results

Written by \`npm run bench\` on ${o.date} at commit ${o.commit}; every full run rewrites this file.
Raw data, every run: [results/${o.date}.json](results/${o.date}.json). What is measured and why:
[docs/benchmarks.md](../docs/benchmarks.md). The machine is shared and noisy, so the figures that matter are
ratios against peers measured in the same run, on the same targets.

## Machine

| | |
| --- | --- |
| CPUs (nproc) | ${m.nproc} |
| CPU model | ${m.cpuModel} |
| memory | ${m.memoryGiB} GiB |
| kernel | ${m.kernel} |
| Node.js | ${m.node} |
| Go (peers) | ${m.go} |
| kubelet prober | ${m.peers.kubelet} |
| blackbox_exporter | ${m.peers.blackbox} |
| floor | ${m.peers.floor} |
| readygate prober | ${e?.readygateImplementation ?? '–'} |

## Command

\`\`\`sh
${o.command}
\`\`\`

${
  opts
    ? `Probe engine: ${opts.farm.http} HTTP and ${opts.farm.tcp} TCP loopback targets (mix ${JSON.stringify(opts.farm.mix)}, slow = ${opts.farm.slowMs} ms), ` +
      `${opts.probes.toLocaleString('en')} measured probes per run after ${opts.warmup.toLocaleString('en')} of warm-up, ${opts.rate.toLocaleString('en')} probes/s, ` +
      `${opts.concurrency} in flight, timeout ${opts.timeoutMs} ms, median of ${opts.repetitions} repetition${opts.repetitions === 1 ? '' : 's'}. Total time ${(o.seconds / 60).toFixed(1)} min.`
    : ''
}

## Figures

${figuresTable(figures)}
${
  e
    ? `
## Probe engine, per peer

${engineTable(e)}
`
    : ''
}
## Method

- Every peer probes the same farm (\`bench/farm.ts\`, a process of its own) with the same schedule:
  probe *i* is planned at *start + i / rate*, round-robin over the targets of one kind, with at
  most *concurrency* in flight (\`bench/engine/loop.ts\`, \`tools/bench/internal/loop\`).
- Each peer runs in a fresh process of its own and measures that process's CPU (user + system,
  all threads) over the measured phase only, after the warm-up: \`process.cpuUsage()\` for
  readygate (\`bench/engine/readygate-runner.ts\`), \`getrusage(RUSAGE_SELF)\` for the Go peers.
  Peak RSS is the process's high-water mark (VmHWM in \`/proc/<pid>/status\`), start-up included.
- kubelet: \`k8s.io/kubernetes/pkg/probe/http\` \`New(false)\` shared by all probes, a request per
  probe from \`NewRequestForHTTPGetAction\`, and \`pkg/probe/tcp\` \`New().Probe\`, as
  \`pkg/kubelet/prober\` calls them (\`tools/bench/kubelet-prober\`).
- blackbox_exporter: modules \`http_2xx\` and \`tcp_connect\` (\`tools/bench/blackbox/blackbox.yml\`),
  default log level, driven through \`/probe?module=…&target=…\` by \`tools/bench/blackbox-driver\`
  over keep-alive connections; the exporter's CPU comes from \`/proc/<pid>/stat\` (10 ms ticks)
  and the driver's own CPU is not counted.
- floor: connect and close with \`SO_LINGER 0\` (TCP); the same plus one fixed GET written and the
  reply read to EOF (HTTP), in Go with no HTTP library (\`tools/bench/floor\`).
- Peers alternate: the order rotates every repetition. "answers" checks every peer's successes
  against what the farm's targets should give.
`;
}

/**
 * Runs the operator-level figures (start-up at N pods, steady-state writes, mass flip, single
 * flip latency, ...): every module in bench/figures/ default-exports a FigureSource that adds its
 * rows with addFigure. They run after the engine, in file-name order, with the same context.
 */
export async function runOperatorFigures(ctx: BenchContext): Promise<void> {
  for (const source of await loadFigureSources(path.join(here, 'figures'))) {
    ctx.log(`figures: ${source.name}`);
    await source.run(ctx);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      repetitions: { type: 'string' },
      probes: { type: 'string' },
      rate: { type: 'string' },
      concurrency: { type: 'string' },
      peers: { type: 'string' },
      kinds: { type: 'string' },
    },
  });
  const started = performance.now();
  const log = (m: string) => console.error(m);
  const opts: EngineOptions = { ...(values.quick ? quickEngineOptions : fullEngineOptions) };
  const int = (s: string | undefined, name: string) => {
    if (s === undefined) return undefined;
    const n = Number(s);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive integer`);
    return n;
  };
  opts.repetitions = int(values.repetitions, 'repetitions') ?? opts.repetitions;
  opts.probes = int(values.probes, 'probes') ?? opts.probes;
  opts.rate = int(values.rate, 'rate') ?? opts.rate;
  opts.concurrency = int(values.concurrency, 'concurrency') ?? opts.concurrency;
  if (values.peers) {
    const peers = values.peers.split(',') as PeerName[];
    for (const p of peers) if (!PEERS.includes(p)) throw new Error(`unknown peer ${p}; known: ${PEERS.join(', ')}`);
    opts.peers = peers;
  }
  if (values.kinds) opts.kinds = values.kinds.split(',') as ProbeKind[];
  const custom = process.argv.slice(2).filter((a) => a !== '--quick');

  const { peersDir, seconds: buildSeconds } = buildPeers(log);
  const machine = machineInfo(peersDir);
  const ctx: BenchContext = { quick: values.quick, peersDir, root, log, details: {} };

  const engine = await runEngineFigures(ctx, opts);
  await runOperatorFigures(ctx);

  const seconds = (performance.now() - started) / 1000;
  const date = new Date().toISOString().slice(0, 10);
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  const commit = describeCommit(root, ['src/probes', 'bench', 'tools/bench', ':!bench/results', ':!bench/RESULTS.md']);
  console.log(`\n${figuresTable(figures)}\n\n${engineTable(engine)}\n`);

  const resultsDir = path.join(here, 'results');
  await mkdir(resultsDir, { recursive: true });
  // Only the default full run is published; quick and custom runs get files git ignores.
  const suffix = values.quick ? '-quick' : custom.length ? '-custom' : '';
  const file = path.join(resultsDir, `${date}${suffix}.json`);
  const json = { date, commit, command, quick: values.quick, seconds, buildSeconds, machine, figures, ...ctx.details };
  await writeFile(file, `${JSON.stringify(json, null, 2)}\n`);
  log(`wrote ${path.relative(root, file)}`);
  if (!values.quick && custom.length === 0) {
    const md = path.join(here, 'RESULTS.md');
    await writeFile(md, resultsMarkdown({ date, commit, command, machine, engine, seconds }));
    // Biome formats Markdown too (padded tables): leave the file as `npm run lint` wants it.
    execFileSync(path.join(root, 'node_modules', '.bin', 'biome'), ['format', '--write', md], { stdio: 'ignore' });
    log('wrote bench/RESULTS.md');
  } else if (!values.quick) {
    log('custom options: bench/RESULTS.md left as it is (it holds the default full run)');
  }
  log(`done in ${seconds.toFixed(1)} s`);
}

if (import.meta.main) await main();

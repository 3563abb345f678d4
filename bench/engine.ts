// The probe-engine figures: CPU per 1,000 TCP and HTTP probes and peak RSS of readygate's
// probers against the kubelet's prober, blackbox_exporter and the floor, all on one target farm,
// at the same rate and concurrency, for the same number of probes. Each peer runs in a process of
// its own and measures that process's CPU over the measured phase only (after a warm-up); for
// blackbox_exporter the driver reads the exporter's CPU from /proc and its own is not counted.
// Peers alternate (the order rotates every repetition) so that drift on a shared machine spreads
// over all of them; each figure is the median of the repetitions.
//   usage: node bench/engine.ts [--quick]     (bench/run.ts is the usual entry)
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { implementation } from './engine/readygate-prober.ts';
import type { Job, PeerReport, ProbeKind, Target } from './engine/types.ts';
import { defaultFarmOptions, type FarmOptions } from './farm.ts';
import { addFigure, type BenchContext, type FigureRow } from './figures.ts';

export const PEERS = ['readygate', 'kubelet', 'blackbox', 'floor'] as const;
export type PeerName = (typeof PEERS)[number];

export interface EngineOptions {
  farm: FarmOptions;
  kinds: ProbeKind[];
  peers: PeerName[];
  /** Measured probes per run, after `warmup` unmeasured ones. */
  probes: number;
  warmup: number;
  rate: number;
  concurrency: number;
  timeoutMs: number;
  repetitions: number;
}

/** The published figures: 10,000 probes per run at 1,000/s, 50 in flight, median of 5. */
export const fullEngineOptions: EngineOptions = {
  farm: defaultFarmOptions,
  kinds: ['tcp', 'http'],
  peers: [...PEERS],
  probes: 10_000,
  warmup: 1_000,
  rate: 1_000,
  concurrency: 50,
  timeoutMs: 1_000,
  repetitions: 5,
};

/** CI's proof that the benchmark still runs: seconds, not minutes. */
export const quickEngineOptions: EngineOptions = {
  ...fullEngineOptions,
  farm: { ...defaultFarmOptions, http: 20, tcp: 20 },
  probes: 500,
  warmup: 100,
  rate: 500,
  repetitions: 1,
};

export interface EngineRun extends PeerReport {
  repetition: number;
  /** Position of the peer in this repetition's order. */
  position: number;
  cpuMsPer1000: number;
  /** Every probe gave the answer the farm expects. */
  correct: boolean;
}

export interface Spread {
  median: number;
  min: number;
  max: number;
}

export interface PeerSummary {
  peer: PeerName;
  kind: ProbeKind;
  runs: number;
  cpuMsPer1000: Spread;
  userMsPer1000: number;
  sysMsPer1000: number;
  maxRssKiB: Spread;
  latenessP99Ms: number;
  correct: boolean;
}

export interface EngineResult {
  options: EngineOptions;
  readygateImplementation: string;
  runs: EngineRun[];
  summary: PeerSummary[];
  /** readygate ÷ peer, of the median CPU per 1,000 probes. */
  ratios: { kind: ProbeKind; peer: PeerName; cpu: number; rss: number }[];
}

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.dirname(here);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const spread = (xs: number[]): Spread => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });

/** Ends a child we started, by its pid, and waits for it (SIGKILL after a grace period). */
async function stop(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Spawns a process, writes `input` to it, and resolves with its last line of output as JSON. */
function runJson<T>(cmd: string, args: string[], input: string, limitMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      err = (err + d).slice(-4000);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const last = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !last) {
        reject(new Error(`${path.basename(cmd)} ${args.join(' ')} ended with ${signal ?? code}: ${err.trim()}`));
        return;
      }
      try {
        resolve(JSON.parse(last) as T);
      } catch (e) {
        reject(new Error(`${path.basename(cmd)} printed no JSON report: ${last.slice(0, 200)} (${e})`));
      }
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

/** Starts the farm in its own process and resolves with its targets once every listener is up. */
async function startFarmProcess(opts: FarmOptions): Promise<{ targets: Target[]; child: ChildProcess }> {
  const child = spawn(process.execPath, [path.join(here, 'farm.ts'), JSON.stringify(opts)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! });
  const first = await new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`the farm ended with ${code} before listing its targets`)));
    setTimeout(() => reject(new Error('the farm did not list its targets within 60 s')), 60_000).unref();
  });
  lines.close();
  return { targets: (JSON.parse(first) as { targets: Target[] }).targets, child };
}

/** Runs one peer on one job in a fresh process and returns its report. */
async function runPeer(peer: PeerName, job: Job, peersDir: string): Promise<PeerReport> {
  const input = JSON.stringify(job);
  const limitMs = ((job.probes + job.warmup) / job.rate) * 3000 + 60_000;
  switch (peer) {
    case 'readygate':
      return runJson(process.execPath, [path.join(here, 'engine', 'readygate-runner.ts')], input, limitMs);
    case 'kubelet':
      return runJson(path.join(peersDir, 'kubelet-prober'), [], input, limitMs);
    case 'floor':
      return runJson(path.join(peersDir, 'floor'), [], input, limitMs);
    case 'blackbox': {
      // The driver starts the exporter as its own child (killed with it), drives it, stops it.
      const args = [
        '-exporter-bin',
        path.join(peersDir, 'blackbox_exporter'),
        '-config',
        path.join(root, 'tools', 'bench', 'blackbox', 'blackbox.yml'),
      ];
      return runJson(path.join(peersDir, 'blackbox-driver'), args, input, limitMs);
    }
  }
}

/** Runs every peer on every kind, `repetitions` times, alternating, and summarises. */
export async function runEngine(
  opts: EngineOptions,
  peersDir: string,
  log: (message: string) => void,
): Promise<EngineResult> {
  const farm = await startFarmProcess(opts.farm);
  const runs: EngineRun[] = [];
  try {
    log(
      `farm: ${opts.farm.http} HTTP + ${opts.farm.tcp} TCP targets; ${opts.probes} probes per run at ${opts.rate}/s, ` +
        `${opts.concurrency} in flight, ${opts.repetitions} repetition(s)`,
    );
    for (let rep = 0; rep < opts.repetitions; rep++) {
      const order = opts.peers.map((_, i) => opts.peers[(i + rep) % opts.peers.length]!);
      for (const kind of opts.kinds) {
        const job: Job = {
          kind,
          targets: farm.targets.filter((t) => t.kind === kind),
          probes: opts.probes,
          warmup: opts.warmup,
          rate: opts.rate,
          concurrency: opts.concurrency,
          timeoutMs: opts.timeoutMs,
        };
        for (const [position, peer] of order.entries()) {
          const r = await runPeer(peer, job, peersDir);
          const run: EngineRun = {
            ...r,
            repetition: rep,
            position,
            cpuMsPer1000: ((r.cpuUserMs + r.cpuSysMs) / r.probes) * 1000,
            correct: r.successes === r.expectedSuccesses && r.successes + r.failures === r.probes,
          };
          runs.push(run);
          log(
            `  rep ${rep + 1}/${opts.repetitions} ${kind.padEnd(4)} ${peer.padEnd(9)} ` +
              `${run.cpuMsPer1000.toFixed(1).padStart(7)} CPU-ms/1000  rss ${(r.maxRssKiB / 1024).toFixed(0).padStart(4)} MiB  ` +
              `late p99 ${r.latenessP99Ms.toFixed(1)} ms${run.correct ? '' : `  WRONG: ${r.successes}/${r.expectedSuccesses} successes`}`,
          );
        }
      }
    }
  } finally {
    await stop(farm.child);
  }

  const summary: PeerSummary[] = [];
  const ratios: EngineResult['ratios'] = [];
  for (const kind of opts.kinds) {
    for (const peer of opts.peers) {
      const mine = runs.filter((r) => r.kind === kind && r.peer === peer);
      summary.push({
        peer,
        kind,
        runs: mine.length,
        cpuMsPer1000: spread(mine.map((r) => r.cpuMsPer1000)),
        userMsPer1000: median(mine.map((r) => (r.cpuUserMs / r.probes) * 1000)),
        sysMsPer1000: median(mine.map((r) => (r.cpuSysMs / r.probes) * 1000)),
        maxRssKiB: spread(mine.map((r) => r.maxRssKiB)),
        latenessP99Ms: median(mine.map((r) => r.latenessP99Ms)),
        correct: mine.every((r) => r.correct),
      });
    }
    const ours = summary.find((s) => s.kind === kind && s.peer === 'readygate');
    for (const s of summary.filter((s) => s.kind === kind && s.peer !== 'readygate')) {
      if (ours) {
        ratios.push({
          kind,
          peer: s.peer,
          cpu: ours.cpuMsPer1000.median / s.cpuMsPer1000.median,
          rss: ours.maxRssKiB.median / s.maxRssKiB.median,
        });
      }
    }
  }
  return { options: opts, readygateImplementation: implementation, runs, summary, ratios };
}

/** The engine's rows of the results table, with their goals (docs/benchmarks.md). */
export function engineFigures(result: EngineResult): FigureRow[] {
  const rows: FigureRow[] = [];
  const round = (x: number, digits: number) => Number(x.toFixed(digits));
  for (const kind of result.options.kinds) {
    const mine = result.summary.filter((s) => s.kind === kind);
    const ours = mine.find((s) => s.peer === 'readygate');
    const others = mine.filter((s) => s.peer !== 'readygate');
    const ratio = (peer: string, key: 'cpu' | 'rss') =>
      result.ratios.find((r) => r.kind === kind && r.peer === peer)?.[key];
    const label = kind.toUpperCase();
    const cpuRatios = Object.fromEntries(others.map((s) => [s.peer, round(ratio(s.peer, 'cpu') ?? Number.NaN, 2)]));
    const vsKubelet = ratio('kubelet', 'cpu');
    const vsFloor = ratio('floor', 'cpu');
    let met: boolean | undefined;
    let goal = '≤ 1.0 × kubelet';
    if (vsKubelet !== undefined) met = vsKubelet <= 1;
    if (kind === 'tcp') {
      goal += ', ≤ 2.0 × floor';
      if (vsFloor !== undefined) met = (met ?? true) && vsFloor <= 2;
    }
    const wrong = mine.filter((s) => !s.correct).map((s) => s.peer);
    rows.push({
      figure: `CPU per 1,000 ${label} probes`,
      value: ours ? round(ours.cpuMsPer1000.median, 1) : null,
      unit: 'CPU-ms',
      peers: Object.fromEntries(others.map((s) => [s.peer, round(s.cpuMsPer1000.median, 1)])),
      ratios: cpuRatios,
      goal,
      ...(met === undefined ? {} : { met }),
      ...(wrong.length ? { note: `wrong answers from: ${wrong.join(', ')}` } : {}),
      source: 'engine',
    });
    rows.push({
      figure: `Peak RSS, ${label} prober`,
      value: ours ? round(ours.maxRssKiB.median / 1024, 1) : null,
      unit: 'MiB',
      peers: Object.fromEntries(others.map((s) => [s.peer, round(s.maxRssKiB.median / 1024, 1)])),
      ratios: Object.fromEntries(others.map((s) => [s.peer, round(ratio(s.peer, 'rss') ?? Number.NaN, 2)])),
      note: 'whole process, for this probe load alone',
      source: 'engine',
    });
  }
  return rows;
}

/** Runs the engine figures for bench/run.ts: adds its rows and puts the raw runs in ctx.details. */
export async function runEngineFigures(ctx: BenchContext, opts: EngineOptions): Promise<EngineResult> {
  const result = await runEngine(opts, ctx.peersDir, ctx.log);
  for (const row of engineFigures(result)) addFigure(row);
  ctx.details.engine = result;
  return result;
}

if (import.meta.main) {
  const quick = process.argv.includes('--quick');
  const out = execFileSync('bash', [path.join(root, 'scripts', 'build-bench-peers.sh')], {
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
  });
  const peersDir = out.trim().split('\n').pop()!;
  const result = await runEngine(quick ? quickEngineOptions : fullEngineOptions, peersDir, (m) => console.error(m));
  console.log(JSON.stringify({ summary: result.summary, ratios: result.ratios }, null, 2));
}

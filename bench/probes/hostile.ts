// Hostile pods against the HTTP prober (`node --expose-gc bench/probes/hostile.ts [--quick] [--json]`;
// `npm run bench` runs it through bench/figures/hostile.ts). Three figures, no assertions:
//   cost    CPU per healthy HTTP probe, alone and with the hostile targets of
//           test/support/hostile-targets.ts probed at the same time by the same process:
//           rounds of three phases (healthy alone, hostile alone, both; the order rotates), each
//           on a fixed schedule (bench/engine/loop.ts), so the hostile phase's CPU can be taken
//           out of the mixed phase's: healthy CPU with = (CPU both − CPU hostile alone) / healthy
//           probes. Medians over rounds; also the healthy probes' duration p50/p99.
//   kinds   CPU per 1,000 probes of each hostile target alone, next to a healthy target.
//   memory  heap growth (heapUsed + external, after gc) with 256 probes in flight against the
//           largest allowed answer, its head trickled and its last byte held back until all 256
//           have read the rest, the most a probe buffers; per in-flight probe, against a control
//           that holds only the status line. Then released (the last byte and the body): all
//           must succeed, and the heap must come back.
// The healthy targets are bench/probes/farm.ts, the hostile ones bench/probes/hostile-farm.ts,
// each in a child process. Loopback only.
import { type ChildProcess, spawn } from 'node:child_process';
import dc from 'node:diagnostics_channel';
import type { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { createHttpProber } from '../../src/probes/http.ts';
import { MAX_HEAD_BYTES } from '../../src/probes/http-parser.ts';
import type { ProbeResult } from '../../src/probes/types.ts';
import type { HostileTarget } from '../../test/support/hostile-targets.ts';
import { runPhase } from '../engine/loop.ts';
import type { Job, Target } from '../engine/types.ts';

export interface HostileBenchOptions {
  /** Healthy probes per phase, at healthyRate per second with 50 in flight, timeout 1 s. */
  healthyProbes: number;
  healthyRate: number;
  /** Hostile "pods", round-robin over the hostile targets, each probed once per second (timeout 1 s). */
  hostilePods: number;
  rounds: number;
  /** Probes per hostile target in the per-kind table. */
  perKindProbes: number;
  /** Probes in flight in the memory figure. */
  inFlight: number;
  /** The memory figure's trickle: the largest head in pieces of this size, one every pieceMs. */
  trickle: { pieceBytes: number; pieceMs: number };
}

export const quickHostileOptions: HostileBenchOptions = {
  healthyProbes: 1000,
  healthyRate: 1000,
  hostilePods: 64,
  rounds: 1,
  perKindProbes: 20,
  inFlight: 256,
  trickle: { pieceBytes: 4096, pieceMs: 5 },
};

export const fullHostileOptions: HostileBenchOptions = {
  healthyProbes: 10_000,
  healthyRate: 1000,
  hostilePods: 256,
  rounds: 5,
  perKindProbes: 500,
  inFlight: 256,
  trickle: { pieceBytes: 4096, pieceMs: 20 },
};

const HEALTHY_IN_FLIGHT = 50;
const TIMEOUT_MS = 1000;
const HOSTILE_PERIOD_MS = 1000;
const STATUS_LINE = 'HTTP/1.1 200 OK\r\n';

interface Address {
  host: string;
  port: number;
}
interface HostileInfo {
  targets: HostileTarget[];
  standIn: Address;
  heldBytes: number;
}

export interface CostRound {
  order: string;
  /** CPU-ms per 1,000 healthy probes: alone, and with the hostile targets (hostile phase's CPU taken out). */
  alone: number;
  with: number;
  ratio: number;
  /**
   * CPU of both at once ÷ (healthy alone + hostile alone): 1 when the two loads do not interact,
   * above 1 when the hostile one makes the healthy one dearer, below when a busier event loop
   * does more per wake-up (which the subtraction credits to the healthy probes).
   */
  interaction: number;
  /** CPU-ms of the hostile phase alone, per 1,000 hostile probes. */
  hostilePer1000: number;
  durationAlone: { p50: number; p99: number };
  durationWith: { p50: number; p99: number };
  healthyFailures: number;
  hostileUnexpected: Record<string, number>;
}

export interface KindRow {
  name: string;
  does: string;
  expect: string;
  cpuMsPer1000: number;
  asExpected: number;
  probes: number;
}

export interface HeapFigures {
  label: string;
  inFlight: number;
  /** Bytes of the answer each probe had read when measured. */
  heldBytes: number;
  /** (heapUsed + external) growth per in-flight probe, after gc. */
  bytesPerProbe: number;
  heapUsedPerProbe: number;
  externalPerProbe: number;
  /** Growth left after every probe ended, whole process, after gc. */
  bytesAfter: number;
  /** CPU-ms per probe while the heads trickled in. */
  cpuMsPerProbe: number;
  successes: number;
}

export interface HostileBenchResult {
  options: HostileBenchOptions;
  node: string;
  rounds: CostRound[];
  median: {
    alone: number;
    with: number;
    ratio: number;
    interaction: number;
    durationP99Alone: number;
    durationP99With: number;
  };
  kinds: KindRow[];
  heap: HeapFigures[];
  standInConnections: number;
  seconds: number;
}

/** A child process that prints one JSON line when ready, then answers commands line by line. */
interface Child<T> {
  info: T;
  ask(command: string): Promise<string>;
  send(command: string): void;
  stop(): void;
}

async function startChild<T>(script: string, args: string[] = []): Promise<Child<T>> {
  const child: ChildProcess = spawn(process.execPath, [new URL(script, import.meta.url).pathname, ...args], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! });
  const waiting: Array<(line: string) => void> = [];
  lines.on('line', (line) => waiting.shift()?.(line));
  const next = () => new Promise<string>((resolve) => waiting.push(resolve));
  const first = await Promise.race([
    next(),
    new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`${script} exited (${code})`)))),
  ]);
  return {
    info: JSON.parse(first) as T,
    ask: (command) => {
      const answer = next();
      child.stdin!.write(`${command}\n`);
      return answer;
    },
    send: (command) => child.stdin!.write(`${command}\n`),
    stop: () => {
      child.stdin!.end();
      child.kill();
    },
  };
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] ?? Number.NaN;
}

function median(xs: number[]): number {
  return quantile(
    [...xs].sort((a, b) => a - b),
    0.5,
  );
}

const round1 = (x: number) => Math.round(x * 10) / 10;

/** One prober per hostile target (each has its own path and scheme), checking the outcome. */
function hostileProbe(targets: HostileTarget[], unexpected: Map<string, number>) {
  const probers = targets.map((t) => createHttpProber({ port: t.port, path: t.path, scheme: t.scheme }));
  return async (i: number): Promise<boolean> => {
    const t = targets[i]!;
    const r = await probers[i]!.probe({ host: t.host, port: t.port, timeoutMs: TIMEOUT_MS });
    if (r.outcome !== t.expect) unexpected.set(t.name, (unexpected.get(t.name) ?? 0) + 1);
    return r.outcome === t.expect;
  };
}

function jobOf(addresses: Address[], probes: number, rate: number, concurrency: number): Job {
  const targets: Target[] = addresses.map((a) => ({ ...a, kind: 'http', expect: true, behavior: 'healthy' }));
  return { kind: 'http', targets, probes, warmup: 0, rate, concurrency, timeoutMs: TIMEOUT_MS };
}

interface Load {
  healthy: Job;
  hostile: Job;
  probeHealthy: (target: Target) => Promise<ProbeResult>;
  probeHostile: (i: number) => Promise<boolean>;
}

/** Runs one phase (healthy, hostile or both at once) and returns its CPU-ms and healthy durations. */
async function phase(load: Load, healthy: boolean, hostile: boolean) {
  const durations: number[] = [];
  let failures = 0;
  const cpu0 = process.cpuUsage();
  await Promise.all([
    healthy
      ? runPhase(load.healthy, load.healthy.probes, async (_i, t) => {
          const r = await load.probeHealthy(t);
          durations.push(r.durationMs);
          if (r.outcome !== 'success') failures++;
          return r.outcome === 'success';
        })
      : undefined,
    hostile ? runPhase(load.hostile, load.hostile.probes, (i) => load.probeHostile(i)) : undefined,
  ]);
  const cpu = process.cpuUsage(cpu0);
  durations.sort((a, b) => a - b);
  const duration = { p50: round1(quantile(durations, 0.5)), p99: round1(quantile(durations, 0.99)) };
  return { cpuMs: (cpu.user + cpu.system) / 1000, duration, failures };
}

/** The cost figure: rounds of healthy alone / hostile alone / both, rotating the order. */
async function costRounds(
  o: HostileBenchOptions,
  healthy: Address[],
  hostile: HostileTarget[],
  log: (m: string) => void,
) {
  const seconds = o.healthyProbes / o.healthyRate;
  const hostileRate = (o.hostilePods * 1000) / HOSTILE_PERIOD_MS;
  const prober = createHttpProber({ port: 0, path: '/ready', bodyRegex: '"status":"ok"' });
  const unexpected = new Map<string, number>();
  const load: Load = {
    healthy: jobOf(healthy, o.healthyProbes, o.healthyRate, HEALTHY_IN_FLIGHT),
    hostile: jobOf(hostile, Math.round(hostileRate * seconds), hostileRate, o.hostilePods),
    probeHealthy: (t) => prober.probe({ host: t.host, port: t.port, timeoutMs: TIMEOUT_MS }),
    probeHostile: hostileProbe(hostile, unexpected),
  };
  await phase(load, true, true); // warm-up
  const rounds: CostRound[] = [];
  const orders = [
    ['alone', 'hostile', 'both'],
    ['hostile', 'both', 'alone'],
    ['both', 'alone', 'hostile'],
  ] as const;
  for (let r = 0; r < o.rounds; r++) {
    unexpected.clear();
    const order = orders[r % orders.length]!;
    const got: Record<string, Awaited<ReturnType<typeof phase>>> = {};
    for (const p of order) got[p] = await phase(load, p !== 'hostile', p !== 'alone');
    const alone = (got.alone!.cpuMs / o.healthyProbes) * 1000;
    const withHostile = ((got.both!.cpuMs - got.hostile!.cpuMs) / o.healthyProbes) * 1000;
    rounds.push({
      order: order.join(', '),
      alone: round1(alone),
      with: round1(withHostile),
      ratio: Math.round((withHostile / alone) * 100) / 100,
      interaction: Math.round((got.both!.cpuMs / (got.alone!.cpuMs + got.hostile!.cpuMs)) * 100) / 100,
      hostilePer1000: round1((got.hostile!.cpuMs / load.hostile.probes) * 1000),
      durationAlone: got.alone!.duration,
      durationWith: got.both!.duration,
      healthyFailures: got.alone!.failures + got.both!.failures,
      hostileUnexpected: Object.fromEntries(unexpected),
    });
    log(`round ${r + 1}/${o.rounds}: ${JSON.stringify(rounds[rounds.length - 1])}`);
  }
  return rounds;
}

/** CPU per 1,000 probes of each hostile target alone, and of a healthy one for scale. */
async function kindRows(o: HostileBenchOptions, healthy: Address, hostile: HostileTarget[]): Promise<KindRow[]> {
  const rows: KindRow[] = [];
  const healthyTarget: HostileTarget = {
    ...healthy,
    name: 'healthy (for scale)',
    scheme: 'HTTP',
    path: '/ready',
    expect: 'success',
    does: '200 {"status":"ok"} (bench/probes/farm.ts)',
  };
  for (const t of [healthyTarget, ...hostile]) {
    const unexpected = new Map<string, number>();
    const probe = hostileProbe([t], unexpected);
    const job = jobOf([t], o.perKindProbes, 1_000_000, HEALTHY_IN_FLIGHT);
    const cpu0 = process.cpuUsage();
    await runPhase(job, job.probes, () => probe(0));
    const cpu = process.cpuUsage(cpu0);
    rows.push({
      name: t.name,
      does: t.does,
      expect: t.expect,
      cpuMsPer1000: round1(((cpu.user + cpu.system) / 1000 / o.perKindProbes) * 1000),
      asExpected: o.perKindProbes - (unexpected.get(t.name) ?? 0),
      probes: o.perKindProbes,
    });
  }
  return rows;
}

const gc = (): void => {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (!collect) throw new Error('run with node --expose-gc (the memory figure is measured after gc)');
  collect();
  collect();
};

// heapUsed + external: arrayBuffers (Buffers) is part of external already. V8 frees the backing
// stores of dead ArrayBuffers on a background thread after a GC, so external is read once that
// has settled: after a GC and a pause, until two readings agree (a few at most).
async function memory(): Promise<{ heapUsed: number; external: number }> {
  let last = Number.NaN;
  for (let i = 0; i < 10; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 20));
    const m = process.memoryUsage();
    if (Math.abs(m.external - last) < 4096) return { heapUsed: m.heapUsed, external: m.external };
    last = m.external;
  }
  throw new Error('external memory did not settle after 10 GCs');
}

/** Waits, a few ms at a time, until cond() holds; throws after timeoutMs. */
async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`${what}: not after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The memory figure for one trickle: `inFlight` probes, each holding heldBytes of the answer. */
async function heapScenario(label: string, o: HostileBenchOptions, holdBack: number): Promise<HeapFigures> {
  const farm = await startChild<HostileInfo>('./hostile-farm.ts', [
    JSON.stringify({ largest: { ...o.trickle, holdBack } }),
  ]);
  const sockets: Socket[] = [];
  const onSocket = (m: unknown) => sockets.push((m as { socket: Socket }).socket);
  try {
    const t = farm.info.targets.find((x) => x.name === 'largest-answer')!;
    const prober = createHttpProber({ port: t.port, path: t.path });
    const before = await memory();
    dc.subscribe('net.client.socket', onSocket);
    const cpu0 = process.cpuUsage();
    const results = Array.from({ length: o.inFlight }, () =>
      prober.probe({ host: t.host, port: t.port, timeoutMs: 120_000 }),
    );
    const held = farm.info.heldBytes;
    await until(
      () => sockets.length === o.inFlight && sockets.every((s) => s.bytesRead >= held),
      60_000,
      `${o.inFlight} probes holding ${held} bytes each`,
    );
    const cpu = process.cpuUsage(cpu0);
    const during = await memory();
    farm.send('release');
    const settled = await Promise.all(results);
    // A probe settles as it resets its socket; the socket (and what it holds) goes on close.
    await until(() => sockets.every((s) => s.closed), 10_000, 'every probe socket closed');
    sockets.length = 0; // the benchmark's own references: what is left after must be the prober's
    const after = await memory();
    const per = (k: 'heapUsed' | 'external') => (during[k] - before[k]) / o.inFlight;
    return {
      label,
      inFlight: o.inFlight,
      heldBytes: held,
      bytesPerProbe: Math.round(per('heapUsed') + per('external')),
      heapUsedPerProbe: Math.round(per('heapUsed')),
      externalPerProbe: Math.round(per('external')),
      bytesAfter: after.heapUsed + after.external - before.heapUsed - before.external,
      cpuMsPerProbe: Math.round(((cpu.user + cpu.system) / 1000 / o.inFlight) * 1000) / 1000,
      successes: settled.filter((r) => r.outcome === 'success').length,
    };
  } finally {
    dc.unsubscribe('net.client.socket', onSocket);
    farm.stop();
  }
}

/** Runs the three figures; see the module comment. */
export async function runHostileBench(o: HostileBenchOptions, log: (m: string) => void): Promise<HostileBenchResult> {
  const started = performance.now();
  const healthyFarm = await startChild<{ http: Address[] }>('./farm.ts');
  const hostileFarm = await startChild<HostileInfo>('./hostile-farm.ts');
  try {
    const hostile = hostileFarm.info.targets;
    const rounds = await costRounds(o, healthyFarm.info.http, hostile, log);
    log('per-kind CPU');
    const kinds = await kindRows(o, healthyFarm.info.http[0]!, hostile);
    const standInConnections = Number(await hostileFarm.ask('stand-in'));
    log('memory with the largest answer held');
    const heap = [
      await heapScenario('status line only (control)', o, MAX_HEAD_BYTES - STATUS_LINE.length),
      // The most a probe buffers before it has a whole head: all of the largest head but one byte.
      await heapScenario('largest head but its last byte', o, 1),
    ];
    return {
      options: o,
      node: process.versions.node,
      rounds,
      median: {
        alone: median(rounds.map((r) => r.alone)),
        with: median(rounds.map((r) => r.with)),
        ratio: median(rounds.map((r) => r.ratio)),
        interaction: median(rounds.map((r) => r.interaction)),
        durationP99Alone: median(rounds.map((r) => r.durationAlone.p99)),
        durationP99With: median(rounds.map((r) => r.durationWith.p99)),
      },
      kinds,
      heap,
      standInConnections,
      seconds: Math.round((performance.now() - started) / 100) / 10,
    };
  } finally {
    healthyFarm.stop();
    hostileFarm.stop();
  }
}

/** The figures as Markdown, for bench/probes/RESULTS.md. */
export function hostileMarkdown(r: HostileBenchResult): string {
  const o = r.options;
  const lines = [
    `Healthy: ${o.healthyProbes.toLocaleString('en')} probes per phase at ${o.healthyRate}/s, ${HEALTHY_IN_FLIGHT} in flight; ` +
      `hostile: ${o.hostilePods} pods over ${r.kinds.length - 1} targets, each probed every ${HOSTILE_PERIOD_MS / 1000} s; ` +
      `timeout ${TIMEOUT_MS} ms; ${o.rounds} round${o.rounds === 1 ? '' : 's'}. API-server stand-in connections: ${r.standInConnections}.`,
    '',
    '| round (phase order) | healthy CPU-ms / 1,000, alone | with hostile | ratio | both ÷ (alone + hostile) | hostile CPU-ms / 1,000 | healthy duration p50 / p99 ms, alone | with hostile | healthy failures | hostile outcomes not as expected |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const x of r.rounds) {
    const unexpected = Object.entries(x.hostileUnexpected).map(([k, v]) => `${k} ${v}`);
    lines.push(
      `| ${x.order} | ${x.alone} | ${x.with} | ${x.ratio.toFixed(2)} | ${x.interaction.toFixed(2)} | ${x.hostilePer1000} | ${x.durationAlone.p50} / ${x.durationAlone.p99} | ` +
        `${x.durationWith.p50} / ${x.durationWith.p99} | ${x.healthyFailures} | ${unexpected.join(', ') || 'none'} |`,
    );
  }
  const m = r.median;
  lines.push(
    `| **median** | ${m.alone} | ${m.with} | **${m.ratio.toFixed(2)}** | ${m.interaction.toFixed(2)} | | | | | |`,
    '',
  );
  lines.push(
    '| target | what it does | expected | CPU-ms / 1,000 probes | as expected |',
    '| --- | --- | --- | ---: | ---: |',
  );
  for (const k of r.kinds)
    lines.push(`| ${k.name} | ${k.does} | ${k.expect} | ${k.cpuMsPer1000} | ${k.asExpected} / ${k.probes} |`);
  lines.push(
    '',
    '| in flight | each holding | heap + external per probe (heap / external) | left after all ended | CPU-ms per probe | successes |',
    '| ---: | --- | ---: | ---: | ---: | ---: |',
  );
  for (const h of r.heap) {
    lines.push(
      `| ${h.inFlight} | ${h.label}, ${h.heldBytes.toLocaleString('en')} bytes | ${h.bytesPerProbe.toLocaleString('en')} B ` +
        `(${h.heapUsedPerProbe.toLocaleString('en')} / ${h.externalPerProbe.toLocaleString('en')}) | ` +
        `${(h.bytesAfter / 1024).toFixed(0)} KiB | ${h.cpuMsPerProbe} | ${h.successes} / ${h.inFlight} |`,
    );
  }
  return lines.join('\n');
}

if (import.meta.main) {
  const quick = process.argv.includes('--quick');
  const result = await runHostileBench(quick ? quickHostileOptions : fullHostileOptions, (m) => console.error(m));
  if (process.argv.includes('--json')) console.log(JSON.stringify(result));
  else console.log(`${hostileMarkdown(result)}\n\n${JSON.stringify(result)}`);
}

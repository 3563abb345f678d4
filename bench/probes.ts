// Probe engine micro-benchmark (`npm run bench:probes`, `-- --quick` for a CI-sized run).
// Prints, per probe implementation, probes/s and CPU-ms per 1,000 probes of this process
// (process.cpuUsage: user + system), the median of interleaved runs against a loopback target
// farm that runs in a child process; then the TIME_WAIT count around a 20,000-probe TCP burst,
// the scheduler's start lateness at a steady 2,000 probes/s, and the tarpit scenario
// (bench/probes/tarpit.ts: victims' lateness with and without 256 never-answering targets in
// another namespace; `-- --tarpit-only` runs it alone). No assertions: figures only.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { connect } from 'node:net';
import { createInterface } from 'node:readline';
import { createHttpProber } from '../src/probes/http.ts';
import { type HttpExchange, leanExchange } from '../src/probes/http-exchange.ts';
import { undiciExchange } from '../src/probes/http-undici.ts';
import { ProbeScheduler } from '../src/probes/scheduler.ts';
import { probeTcp } from '../src/probes/tcp.ts';
import type { ProbeResult } from '../src/probes/types.ts';
import { nodeHttpExchange } from './probes/node-http-exchange.ts';
import { type PhaseFigures, tarpitScenario, tarpitTable } from './probes/tarpit.ts';

interface Address {
  host: string;
  port: number;
}

const quick = process.argv.includes('--quick');
const tarpitOnly = process.argv.includes('--tarpit-only');
// Each tarpit phase outlasts the tarpit's 60 s timeout, so its slots are given back and taken again within it.
const TARPIT_PHASE_SECONDS = quick ? 10 : 70;
const N = quick ? 2000 : 10_000;
const ROUNDS = quick ? 1 : 3;
const IN_FLIGHT = 50;
const BURST = 20_000;

async function startFarm(): Promise<{ child: ChildProcess; http: Address[]; tcp: Address[]; tarpit: Address[] }> {
  const child = spawn(process.execPath, [new URL('./probes/farm.ts', import.meta.url).pathname], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    child.once('error', reject);
    createInterface({ input: child.stdout! }).once('line', resolve);
  });
  return { child, ...(JSON.parse(line) as { http: Address[]; tcp: Address[]; tarpit: Address[] }) };
}

type ProbeOnce = (target: Address) => Promise<ProbeResult | 'ok'>;

/** Runs n probes with IN_FLIGHT concurrent, round-robin over targets. */
async function measure(
  n: number,
  targets: Address[],
  probe: ProbeOnce,
): Promise<{ perSecond: number; cpuMsPer1000: number; failures: number }> {
  let next = 0;
  let failures = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    while (next < n) {
      const target = targets[next++ % targets.length]!;
      const r = await probe(target);
      if (r !== 'ok' && r.outcome !== 'success') failures++;
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { perSecond: (n / wallMs) * 1000, cpuMsPer1000: (cpu.user + cpu.system) / 1000 / (n / 1000), failures };
}

// The physical floor: connect and RST, nothing else (no timer, no result object).
const floor: ProbeOnce = (t) =>
  new Promise((resolve) => {
    const s = connect(t.port, t.host);
    s.once('connect', () => {
      s.resetAndDestroy();
      resolve('ok');
    });
    s.once('error', () => resolve({ outcome: 'failure', couldNotLook: false, message: '', durationMs: 0 }));
  });

function httpWith(exchange: HttpExchange): ProbeOnce {
  const prober = createHttpProber({ port: 0, path: '/ready', bodyRegex: '"status":"ok"' }, { exchange });
  return (t) => prober.probe({ host: t.host, port: t.port, timeoutMs: 5000 });
}

/** TIME_WAIT sockets on the machine, and those on the farm's ports (others' tests add noise to the first). */
function timeWait(farmPorts: Set<number>): { all: number; farm: number } {
  try {
    const lines = execFileSync('ss', ['-tan', 'state', 'time-wait'], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 })
      .trim()
      .split('\n')
      .slice(1);
    const farm = lines.filter((line) =>
      line
        .trim()
        .split(/\s+/)
        .slice(-2)
        .some((addr) => farmPorts.has(Number(addr.slice(addr.lastIndexOf(':') + 1)))),
    ).length;
    return { all: lines.length, farm };
  } catch {
    return { all: Number.NaN, farm: Number.NaN };
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function schedulerLateness(
  targets: Address[],
  seconds: number,
): Promise<{ p50: number; p99: number; max: number; runs: number }> {
  const late: number[] = [];
  const scheduler = new ProbeScheduler({
    clock: {
      now: Date.now,
      setTimeout: (fn, ms) => setTimeout(fn, ms),
      clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
    },
    concurrency: 500,
    onResult: (_key, _result, timing) => late.push(timing.lateMs),
  });
  // 2,000 targets at a 1 s period = 2,000 probes/s.
  for (let i = 0; i < 2000; i++) {
    const t = targets[i % targets.length]!;
    scheduler.upsert({
      key: `bench/p#${i}`,
      periodMs: 1000,
      timeoutMs: 1000,
      run: () => probeTcp({ host: t.host, port: t.port, timeoutMs: 1000 }),
    });
  }
  await new Promise((r) => setTimeout(r, seconds * 1000));
  scheduler.stop();
  const s = [...late].sort((a, b) => a - b);
  return {
    p50: s[Math.floor(s.length * 0.5)] ?? 0,
    p99: s[Math.floor(s.length * 0.99)] ?? 0,
    max: s[s.length - 1] ?? 0,
    runs: s.length,
  };
}

async function runTarpit(): Promise<PhaseFigures[]> {
  return tarpitScenario({
    http: farm.http,
    tarpit: farm.tarpit,
    seconds: TARPIT_PHASE_SECONDS,
    resetTarpit: () => farm.child.stdin?.write('reset-tarpit\n'),
  });
}

function printTarpit(rows: PhaseFigures[]): void {
  console.log(
    `tarpit scenario: 200 victim HTTP targets (namespace shop, 1 s period) and 256 tarpit HTTP targets ` +
      `(namespace tarpit, accept and never answer, timeout 60 s), concurrency 256, ${TARPIT_PHASE_SECONDS} s per phase`,
  );
  console.log(tarpitTable(rows));
}

const farm = await startFarm();
try {
  if (tarpitOnly) {
    const tarpit = await runTarpit();
    printTarpit(tarpit);
    console.log(JSON.stringify({ mode: quick ? 'quick' : 'full', node: process.versions.node, tarpit }));
  } else {
    await fullRun();
  }
} finally {
  farm.child.stdin?.end();
  farm.child.kill();
}

async function fullRun(): Promise<void> {
  // TIME_WAIT first, before the undici/node:http runs leave their own behind.
  const farmPorts = new Set([...farm.tcp, ...farm.http].map((a) => a.port));
  const before = timeWait(farmPorts);
  const burst = await measure(BURST, farm.tcp, (t) => probeTcp({ host: t.host, port: t.port, timeoutMs: 5000 }));
  const after = timeWait(farmPorts);
  const httpBurst = await measure(5000, farm.http, httpWith(leanExchange));
  const afterHttp = timeWait(farmPorts);

  const rows = await compareImplementations();
  // For contrast: undici and node:http close with FIN and leave TIME_WAIT behind.
  const afterAllHttp = timeWait(farmPorts);
  const lean = rows.find((r) => r.name.startsWith('http lean'))!.cpuMsPer1000;

  const lateness = await schedulerLateness(farm.tcp, quick ? 3 : 10);
  const tarpit = await runTarpit();

  console.log(
    `probe engine benchmark (${quick ? 'quick' : 'full'}): ${N} probes x ${ROUNDS} rounds, ${IN_FLIGHT} in flight, Node ${process.versions.node}`,
  );
  console.log('| implementation | probes/s | CPU ms / 1,000 probes | ÷ http lean | failures |');
  console.log('| --- | ---: | ---: | ---: | ---: |');
  for (const r of rows) {
    console.log(
      `| ${r.name} | ${r.probesPerSecond} | ${r.cpuMsPer1000} | ${(r.cpuMsPer1000 / lean).toFixed(2)} | ${r.failures} |`,
    );
  }
  console.log(
    `TIME_WAIT sockets (whole machine / on farm ports): ${before.all} / ${before.farm} before, ` +
      `${after.all} / ${after.farm} after a ${BURST}-probe TCP burst (${burst.failures} failures), ` +
      `${afterHttp.all} / ${afterHttp.farm} after 5,000 more lean HTTP probes (${httpBurst.failures} failures); ` +
      `${afterAllHttp.all} / ${afterAllHttp.farm} after the comparison runs (undici and node:http close with FIN)`,
  );
  console.log(
    `scheduler at 2,000 probes/s: lateness p50 ${lateness.p50} ms, p99 ${lateness.p99} ms, max ${lateness.max} ms over ${lateness.runs} runs`,
  );
  printTarpit(tarpit);
  console.log(
    JSON.stringify({
      mode: quick ? 'quick' : 'full',
      node: process.versions.node,
      n: N,
      rounds: ROUNDS,
      inFlight: IN_FLIGHT,
      rows,
      timeWait: {
        before,
        afterTcpBurst: after,
        afterHttpBurst: afterHttp,
        afterComparison: afterAllHttp,
        burst: BURST,
      },
      lateness,
      tarpit,
    }),
  );
}

/** Probes/s and CPU per implementation: warm-up, then interleaved rounds, medians. */
async function compareImplementations(): Promise<
  Array<{ name: string; probesPerSecond: number; cpuMsPer1000: number; failures: number }>
> {
  const impls: Array<[string, Address[], ProbeOnce]> = [
    ['floor: connect + RST', farm.tcp, floor],
    ['tcp probe', farm.tcp, (t) => probeTcp({ host: t.host, port: t.port, timeoutMs: 5000 })],
    ['http lean (net.Socket, default)', farm.http, httpWith(leanExchange)],
    ['http undici Client', farm.http, httpWith(undiciExchange)],
    ['http node:http agent:false', farm.http, httpWith(nodeHttpExchange)],
  ];
  // Warm-up, then interleaved rounds so machine noise hits every implementation alike.
  for (const [, targets, probe] of impls) await measure(500, targets, probe);
  const samples = new Map<string, Array<{ perSecond: number; cpuMsPer1000: number; failures: number }>>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, targets, probe] of impls) {
      const list = samples.get(name) ?? [];
      list.push(await measure(N, targets, probe));
      samples.set(name, list);
    }
  }
  return impls.map(([name]) => {
    const xs = samples.get(name)!;
    return {
      name,
      probesPerSecond: Math.round(median(xs.map((x) => x.perSecond))),
      cpuMsPer1000: Number(median(xs.map((x) => x.cpuMsPer1000)).toFixed(1)),
      failures: xs.reduce((a, x) => a + x.failures, 0),
    };
  });
}

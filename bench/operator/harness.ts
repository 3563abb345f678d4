// The operator-level benchmark: the real operator (node src/main.ts run, under the chart's
// ServiceAccount and RBAC) against the real test control plane (etcd + kube-apiserver), with
// thousands of pods made Running by bench/operator/pods.ts and probed on the shared listeners of
// bench/operator/listeners.ts. One control plane for every phase:
//   for each N (ascending), in a namespace of its own with one ProbePolicy:
//     create N gated pods, Running, no condition yet → start the operator (--namespaces ns) →
//     process start → every pod probed once (/metrics, polled every 250 ms) → every gate True (watch);
//     peak RSS (VmHWM) and CPU of the operator process;
//   at N = fleet size, with the same operator still running:
//     steady state (operator's pod writes in the audit log over a window) → mass flip (a group of
//     pods' listeners close at once) and recovery → single flips (one solo target at a time,
//     staggered) and recovery → time to gate (a paced batch of new pods: IP → gate True).
// Everything stops on every path: operator, listener farm, watches, control plane.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { auditPosition, podStatusPatches, writesBy } from '../../test/support/audit.ts';
import { startControlPlane } from '../../test/support/control-plane.ts';
import { installCrd } from '../../test/support/crd.ts';
import { adminKubeConfigFrom } from '../../test/support/kube-admin.ts';
import { OPERATOR_USER, type OperatorProcess, operatorKubeconfig, startOperator } from '../../test/support/operator.ts';
import { Api } from './api.ts';
import { stopOnInterrupt } from './interrupt.ts';
import { addressBlock, type ListenerFarm, startListenerFarm } from './listeners.ts';
import { latencySummary, type PhaseContext, reached, singleFlips, timeToGate } from './phases.ts';
import { APP_LABEL, type PodPlan, startPods } from './pods.ts';
import { percentile, procSample, sumMetric } from './proc.ts';
import { GateWatch } from './watch.ts';

export const CONDITION_TYPE = 'readygate.dev/bench';

export interface OperatorBenchOptions {
  quick: boolean;
  /** Pod counts of the start-up runs, ascending, each in a namespace of its own. */
  startupSizes: number[];
  /** The start-up size whose namespace then hosts the other phases (skipped if not among them). */
  fleetSize: number;
  steadySeconds: number;
  massFlip: number;
  singleFlips: number;
  /** Seconds between single flips (each one is taken down at a random moment within ±50 %). */
  singleFlipSpacingSeconds: number;
  gateBatch: number;
  /** Pods per second of the time-to-gate batch. */
  gateRate: number;
  periodSeconds: number;
  timeoutSeconds: number;
  failureThreshold: number;
  initialDelaySeconds: number;
  /** Pods created at once (create + status in flight). */
  createConcurrency: number;
  /** Extra flags for `readygate run`. */
  operatorArgs: string[];
  /** Environment for the operator child (e.g. NODE_OPTIONS=--cpu-prof). */
  operatorEnv: Record<string, string>;
  /** Node.js flags for the operator child, before its script (e.g. --max-old-space-size=192). */
  operatorNodeArgs: string[];
  /** Shared listener addresses for the pods that no phase takes down. */
  sharedAddresses: number;
  /** Take a heap snapshot after each start-up into this directory (the operator runs with --heapsnapshot-signal=SIGUSR2). */
  heapSnapshotDir?: string;
  /** Keep each operator's log (stdout and stderr) in this directory. */
  logDir?: string;
}

export const fullOperatorOptions: OperatorBenchOptions = {
  quick: false,
  startupSizes: [1000, 5000, 10000],
  fleetSize: 5000,
  steadySeconds: 300,
  massFlip: 1000,
  singleFlips: 20,
  singleFlipSpacingSeconds: 2,
  gateBatch: 1000,
  gateRate: 20,
  periodSeconds: 10,
  timeoutSeconds: 2,
  failureThreshold: 3,
  initialDelaySeconds: 0,
  createConcurrency: 32,
  operatorArgs: [],
  operatorEnv: {},
  operatorNodeArgs: [],
  sharedAddresses: 256,
};

export const quickOperatorOptions: OperatorBenchOptions = {
  ...fullOperatorOptions,
  quick: true,
  startupSizes: [200],
  fleetSize: 200,
  // Short phases keep `npm run bench -- --quick` under a minute (issue 6): it proves each phase
  // still runs, the full run gives the figures.
  steadySeconds: 5,
  massFlip: 100,
  singleFlips: 3,
  singleFlipSpacingSeconds: 0.5,
  gateBatch: 40,
  gateRate: 20,
  periodSeconds: 2,
  timeoutSeconds: 1,
  failureThreshold: 2,
};

export interface StartupResult {
  pods: number;
  namespace: string;
  /** Seconds to create the pods and make them Running (the benchmark's own set-up). */
  createSeconds: number;
  /** Process start → /healthz answers. */
  healthySeconds: number;
  /** Process start → readygate_probes_total ≥ pods (first 250 ms poll that shows it). */
  probedOnceSeconds: number;
  /** Process start → every pod's gate True, as a watch sees it. */
  allTrueSeconds: number;
  /** VmHWM of the operator process at the end of its start-up. */
  peakRssMiB: number;
  /** Largest VmRSS seen by the polls during start-up. */
  maxPolledRssMiB: number;
  /** Largest V8 heap in use / reserved seen by the polls (nodejs_heap_size_*_bytes, every second). */
  maxHeapUsedMiB: number;
  maxHeapTotalMiB: number;
  /** Every second: [seconds since process start, RSS MiB, V8 heap used MiB, V8 heap total MiB]. */
  memory: Array<[number, number, number, number]>;
  /** CPU seconds of the operator process from start to all gates True. */
  cpuSeconds: number;
  conditionPatches: number;
  /** The operator's PATCH pods/status calls in the audit log during start-up. */
  auditedPodPatches: number;
  /** Every write of the operator in the namespace (pods/status, events, probepolicies/status). */
  auditedWrites: number;
}

export interface OperatorBenchResult {
  options: OperatorBenchOptions;
  startup: StartupResult[];
  steady?: {
    pods: number;
    seconds: number;
    podStatusPatches: number;
    allWrites: number;
    transitions: number;
    cpuPercent: number;
    probesPerSecond: number;
    rssMiB: number;
  };
  massFlip?: {
    pods: number;
    debounceSeconds: number;
    allFalseSeconds: number;
    beyondDebounceSeconds: number;
    firstFalseSeconds: number;
    p50FalseSeconds: number;
    othersFlipped: number;
    recoverySeconds: number;
    podPatches: number;
  };
  singleFlip?: {
    samples: number[];
    p50Seconds: number;
    p99Seconds: number;
    boundSeconds: number;
    recoverySeconds: number;
  };
  timeToGate?: {
    pods: number;
    ratePerSecond: number;
    p50Seconds: number;
    p99Seconds: number;
    maxSeconds: number;
    goalSeconds: number;
    latenciesMs: number[];
  };
  fleetPeakRssMiB?: number;
  seconds: number;
}

const MiB = (kib: number) => Math.round((kib / 1024) * 10) / 10;
const s = (ms: number) => Math.round(ms) / 1000;

/** The probe settings of a bench ProbePolicy. */
export type ProbeTiming = Pick<
  OperatorBenchOptions,
  'periodSeconds' | 'timeoutSeconds' | 'failureThreshold' | 'initialDelaySeconds'
>;

/** The ProbePolicy of a namespace: HTTP GET / on the pods' container port "http". */
export function policy(ns: string, o: ProbeTiming): object {
  return {
    apiVersion: 'readygate.dev/v1alpha1',
    kind: 'ProbePolicy',
    metadata: { name: 'bench', namespace: ns },
    spec: {
      conditionType: CONDITION_TYPE,
      selector: { matchLabels: { app: APP_LABEL } },
      probe: {
        httpGet: { port: 'http', path: '/' },
        periodSeconds: o.periodSeconds,
        timeoutSeconds: o.timeoutSeconds,
        failureThreshold: o.failureThreshold,
        successThreshold: 1,
        initialDelaySeconds: o.initialDelaySeconds,
      },
      failsafe: { maxUnavailable: '100%' },
    },
  };
}

export interface Layout {
  plans: PodPlan[];
  /** Names of the pods behind the mass-flip addresses. */
  flipPods: string[];
  /** One pod per solo address, in order. */
  soloPods: string[];
}

/**
 * Pod i → address. In the fleet: pods [0, massFlip) on the flip addresses, the last singleFlips
 * pods on one solo address each, the rest on the shared addresses; elsewhere all shared.
 */
export function layout(
  n: number,
  fleet: boolean,
  a: Addresses,
  o: Pick<OperatorBenchOptions, 'massFlip' | 'singleFlips'>,
): Layout {
  const plans: PodPlan[] = [];
  const flipPods: string[] = [];
  const soloPods: string[] = [];
  for (let i = 0; i < n; i++) {
    const name = `p-${String(i).padStart(5, '0')}`;
    let ip = a.shared[i % a.shared.length]!;
    if (fleet && i < o.massFlip) {
      ip = a.flip[i % a.flip.length]!;
      flipPods.push(name);
    } else if (fleet && i >= n - o.singleFlips) {
      ip = a.solo[soloPods.length]!;
      soloPods.push(name);
    }
    plans.push({ name, ip });
  }
  return { plans, flipPods, soloPods };
}

export interface Addresses {
  shared: string[];
  flip: string[];
  solo: string[];
}

/** Signals the operator to write a heap snapshot and waits until the file stops growing. */
async function heapSnapshot(pid: number, dir: string): Promise<string> {
  const before = new Set(existsSync(dir) ? readdirSync(dir) : []);
  process.kill(pid, 'SIGUSR2');
  const deadline = performance.now() + 600_000;
  let last = -1;
  while (performance.now() < deadline) {
    await sleep(2000);
    const file = (existsSync(dir) ? readdirSync(dir) : []).find((f) => f.endsWith('.heapsnapshot') && !before.has(f));
    if (file === undefined) continue;
    const size = statSync(path.join(dir, file)).size;
    if (size > 0 && size === last) return path.join(dir, file);
    last = size;
  }
  throw new Error(`no heap snapshot in ${dir} after 10 min`);
}

export async function metricsText(op: OperatorProcess, timeoutMs = 5000): Promise<string> {
  const res = await fetch(`${op.healthUrl}/metrics`, { signal: AbortSignal.timeout(timeoutMs) });
  return res.text();
}

/** Runs every phase; the control plane, operator and listener farm are stopped on every path. */
export async function runOperatorBench(
  o: OperatorBenchOptions,
  log: (m: string) => void,
): Promise<OperatorBenchResult> {
  const benchStart = performance.now();
  const result: OperatorBenchResult = { options: o, startup: [], seconds: 0 };
  const interrupts = stopOnInterrupt(log);
  const cp = await startControlPlane({ controllerManager: false, log: (l) => log(`control plane: ${l}`) });
  interrupts.add('control plane', () => cp.stop());
  let farm: ListenerFarm | undefined;
  let api: Api | undefined;
  try {
    await installCrd(cp.kubeconfigPath);
    const opKc = await operatorKubeconfig(adminKubeConfigFrom(cp.kubeconfigPath), cp);
    api = new Api(cp.server, cp.caPem, cp.adminToken, 64);
    const flipAddrs = Math.min(50, o.massFlip);
    const addrs: Addresses = {
      shared: addressBlock(50, o.sharedAddresses),
      flip: addressBlock(51, flipAddrs),
      solo: addressBlock(52, o.singleFlips),
    };
    farm = await startListenerFarm([...addrs.shared, ...addrs.flip, ...addrs.solo]);
    interrupts.add('listener farm', farm.stop);
    log(
      `listener farm up: ${addrs.shared.length + addrs.flip.length + addrs.solo.length} addresses, port ${farm.port}`,
    );

    for (const n of o.startupSizes) {
      const fleet = n === o.fleetSize;
      const ns = `bench-${n}`;
      await api.request('POST', '/api/v1/namespaces', { metadata: { name: ns } });
      await api.request('POST', `/apis/readygate.dev/v1alpha1/namespaces/${ns}/probepolicies`, policy(ns, o));
      const lay = layout(n, fleet, addrs, o);
      const createStart = performance.now();
      await startPods(api, lay.plans, {
        namespace: ns,
        conditionType: CONDITION_TYPE,
        port: farm.port,
        concurrency: o.createConcurrency,
      });
      const createSeconds = s(performance.now() - createStart);
      log(`${ns}: ${n} pods Running in ${createSeconds} s`);
      const watch = await GateWatch.start(api, ns, CONDITION_TYPE);
      let op: OperatorProcess | undefined;
      let forgetOp: () => void = () => {};
      try {
        const pos = auditPosition(cp.dir);
        const t0 = performance.now();
        op = await startOperator(
          opKc,
          cp.dir,
          ['--namespaces', ns, '--log-level', 'info', ...o.operatorArgs],
          o.operatorEnv,
          o.operatorNodeArgs,
        );
        const started = op;
        // Its shutdown is bounded (grace + margin, 15 s by default); SIGKILL if it is not.
        forgetOp = interrupts.add('operator', () => started.stop(20_000));
        const opPid = op.child.pid!;
        const healthySeconds = s(performance.now() - t0);
        let probedAt: number | undefined;
        let maxRss = 0;
        let polling = true;
        let maxHeapUsed = 0;
        let maxHeapTotal = 0;
        const memory: StartupResult['memory'] = [];
        const poller = (async () => {
          for (let i = 0; polling; i++) {
            const p = procSample(opPid);
            if (p) maxRss = Math.max(maxRss, p.rssKiB);
            // Every 250 ms until every pod was probed, then every second (the heap only).
            if (probedAt === undefined || i % 4 === 0) {
              const text = await metricsText(op!).catch(() => '');
              if (probedAt === undefined && sumMetric(text, 'readygate_probes_total') >= n)
                probedAt = performance.now();
              maxHeapUsed = Math.max(maxHeapUsed, sumMetric(text, 'nodejs_heap_size_used_bytes'));
              maxHeapTotal = Math.max(maxHeapTotal, sumMetric(text, 'nodejs_heap_size_total_bytes'));
              if (i % 4 === 0 && p) {
                const heapMiB = (name: string) => MiB(sumMetric(text, name) / 1024);
                const at = s(performance.now() - t0);
                memory.push([
                  at,
                  MiB(p.rssKiB),
                  heapMiB('nodejs_heap_size_used_bytes'),
                  heapMiB('nodejs_heap_size_total_bytes'),
                ]);
              }
            }
            await sleep(250);
          }
        })();
        const timeoutMs = 120_000 + (n / 20) * 1000;
        let allTrueAt: number;
        try {
          allTrueAt = await watch.until(() => watch.count('True') >= n, timeoutMs, `${ns}: every gate True`);
          const deadline = performance.now() + 60_000;
          while (probedAt === undefined && performance.now() < deadline) await sleep(100);
        } finally {
          polling = false;
          await poller;
        }
        const proc = procSample(opPid)!;
        const text = await metricsText(op);
        const sr: StartupResult = {
          pods: n,
          namespace: ns,
          createSeconds,
          healthySeconds,
          probedOnceSeconds: probedAt === undefined ? Number.NaN : s(probedAt - t0),
          allTrueSeconds: s(allTrueAt - t0),
          peakRssMiB: MiB(proc.hwmKiB),
          maxPolledRssMiB: MiB(maxRss),
          maxHeapUsedMiB: MiB(maxHeapUsed / 1024),
          maxHeapTotalMiB: MiB(maxHeapTotal / 1024),
          memory,
          cpuSeconds: proc.cpuMs / 1000,
          conditionPatches: sumMetric(text, 'readygate_condition_patches_total'),
          auditedPodPatches: podStatusPatches(cp.dir, OPERATOR_USER, ns, pos).length,
          auditedWrites: writesBy(cp.dir, OPERATOR_USER, ns, pos).length,
        };
        result.startup.push(sr);
        log(
          `${ns}: probed once ${sr.probedOnceSeconds} s, all True ${sr.allTrueSeconds} s, peak RSS ${sr.peakRssMiB} MiB, ` +
            `CPU ${sr.cpuSeconds.toFixed(1)} s, ${sr.auditedPodPatches} pod patches`,
        );
        if (o.heapSnapshotDir) log(`${ns}: heap snapshot ${await heapSnapshot(opPid, o.heapSnapshotDir)}`);
        if (fleet) {
          await fleetPhases({ o, n, ns, cpDir: cp.dir, api, farm, watch, op, addrs, lay, result, log });
          result.fleetPeakRssMiB = MiB(procSample(opPid)?.hwmKiB ?? 0);
        }
      } catch (err) {
        if (op) log(`operator log tail:\n${op.log().slice(-3000)}`);
        throw err;
      } finally {
        await op?.stop();
        forgetOp();
        watch.stop();
        if (op && o.logDir) await copyFile(op.logPath, path.join(o.logDir, `operator-${ns}.log`));
      }
    }
  } finally {
    await farm?.stop();
    api?.close();
    await cp.stop();
    interrupts.dispose();
  }
  result.seconds = s(performance.now() - benchStart);
  return result;
}

interface FleetContext {
  o: OperatorBenchOptions;
  n: number;
  ns: string;
  cpDir: string;
  api: Api;
  farm: ListenerFarm;
  watch: GateWatch;
  op: OperatorProcess;
  addrs: Addresses;
  lay: Layout;
  result: OperatorBenchResult;
  log: (m: string) => void;
}

async function fleetPhases(c: FleetContext): Promise<void> {
  const { o, n, ns, cpDir, farm, watch, op, addrs, lay, result, log } = c;
  const pid = op.child.pid!;
  const periodMs = o.periodSeconds * 1000;
  const debounceMs = o.failureThreshold * periodMs;

  // Steady state: let trailing writes (policy status) settle, then count the operator's writes.
  await sleep(Math.min(10_000, periodMs));
  {
    let transitions = 0;
    const off = watch.onTransition(() => transitions++);
    const pos = auditPosition(cpDir);
    const before = procSample(pid)!;
    const probesBefore = sumMetric(await metricsText(op), 'readygate_probes_total');
    const t0 = performance.now();
    log(`${ns}: steady state for ${o.steadySeconds} s`);
    await sleep(o.steadySeconds * 1000);
    const elapsed = performance.now() - t0;
    const after = procSample(pid)!;
    const probesAfter = sumMetric(await metricsText(op), 'readygate_probes_total');
    off();
    result.steady = {
      pods: n,
      seconds: s(elapsed),
      podStatusPatches: podStatusPatches(cpDir, OPERATOR_USER, ns, pos).length,
      allWrites: writesBy(cpDir, OPERATOR_USER, ns, pos).length,
      transitions,
      cpuPercent: Math.round(((after.cpuMs - before.cpuMs) / elapsed) * 1000) / 10,
      probesPerSecond: Math.round(((probesAfter - probesBefore) / elapsed) * 1000),
      rssMiB: MiB(after.rssKiB),
    };
    log(`${ns}: steady state ${JSON.stringify(result.steady)}`);
  }

  // Mass flip: the flip addresses close at once; every pod behind them must go False.
  {
    const flip = new Set(lay.flipPods);
    const falseAt = new Map<string, number>();
    let others = 0;
    const off = watch.onTransition((pod, _from, at) => {
      if (pod.gate !== 'False') return;
      if (flip.has(pod.name)) falseAt.set(pod.name, at);
      else others++;
    });
    const pos = auditPosition(cpDir);
    const t0 = performance.now();
    await farm.down(addrs.flip);
    log(`${ns}: mass flip of ${flip.size} pods`);
    const allAt = await watch.until(() => falseAt.size >= flip.size, debounceMs + 180_000, 'mass flip: all False');
    off();
    const times = [...falseAt.values()].map((t) => t - t0);
    const r0 = performance.now();
    await farm.up(addrs.flip);
    const recoveredAt = await watch.until(() => watch.count('True') >= n, debounceMs + 180_000, 'mass flip recovery');
    result.massFlip = {
      pods: flip.size,
      debounceSeconds: debounceMs / 1000,
      allFalseSeconds: s(allAt - t0),
      beyondDebounceSeconds: s(allAt - t0 - debounceMs),
      firstFalseSeconds: s(Math.min(...times)),
      p50FalseSeconds: s(percentile(times, 50)),
      othersFlipped: others,
      recoverySeconds: s(recoveredAt - r0),
      podPatches: podStatusPatches(cpDir, OPERATOR_USER, ns, pos).length,
    };
    log(`${ns}: mass flip ${JSON.stringify(result.massFlip)}`);
  }

  const phase: PhaseContext = {
    ns,
    conditionType: CONDITION_TYPE,
    api: c.api,
    farm,
    watch,
    createConcurrency: o.createConcurrency,
  };

  // Single flips: one solo target at a time, staggered, each down at a random moment.
  {
    log(`${ns}: ${lay.soloPods.length} single flips`);
    const timeoutMs = debounceMs + 120_000;
    const run = await singleFlips(phase, {
      pods: lay.soloPods,
      addresses: addrs.solo,
      spacingSeconds: o.singleFlipSpacingSeconds,
      timeoutMs,
      recovered: () => watch.count('True') >= n,
    });
    const samples = run.samples.map((x) => reached(x, 'single flips: all False', timeoutMs));
    result.singleFlip = {
      samples,
      p50Seconds: percentile(samples, 50),
      p99Seconds: percentile(samples, 99),
      boundSeconds: debounceMs / 1000 + 0.25,
      recoverySeconds: reached(run.recoverySeconds, 'single recovery', timeoutMs),
    };
    log(`${ns}: single flip ${JSON.stringify(result.singleFlip)}`);
  }

  // Time to gate: a paced batch of new pods; IP given (status patch returned) → gate True.
  {
    log(`${ns}: time to gate, ${o.gateBatch} new pods at ${o.gateRate}/s`);
    const run = await timeToGate(phase, {
      prefix: 'g-',
      count: o.gateBatch,
      ratePerSecond: o.gateRate,
      addresses: addrs.shared,
      port: farm.port,
      timeoutMs: 180_000,
    });
    if (run.missing > 0) reached(undefined, 'time to gate: all True', 180_000);
    result.timeToGate = {
      pods: o.gateBatch,
      ratePerSecond: o.gateRate,
      ...latencySummary(run.latenciesMs),
      goalSeconds: o.initialDelaySeconds + 1,
      latenciesMs: run.latenciesMs,
    };
    const { latenciesMs: _, ...summary } = result.timeToGate;
    log(`${ns}: time to gate ${JSON.stringify(summary)}`);
  }
}

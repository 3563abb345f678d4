// The ProbeManager implementation: one scheduled target per (policy, pod), a debouncer per target
// seeded from the pod's condition, and desired conditions per pod UID. Whether a flip to False may
// be written is not decided here: src/safety/failsafe.ts decides, this file only reports.
import type { KubeConfig, V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { DesiredPodCondition } from '../api/conditions.ts';
import { API_VERSION, KIND, type ProbePolicy } from '../api/types.ts';
import type { EventSink } from '../kube/events.ts';
import type { Metrics, OverloadStats } from '../observability/metrics.ts';
import { Debouncer } from '../probes/debouncer.ts';
import { longestRunMs, runProbe } from '../probes/probe.ts';
import { ProbeScheduler } from '../probes/scheduler.ts';
import type { ProbeResult } from '../probes/types.ts';
import type { Clock } from '../runtime/clock.ts';
import type { Request } from '../runtime/controller.ts';
import { CrashLogLimiter, type ProbeCrash } from '../safety/containment.ts';
import { Failsafe, type FailsafeTransition, type PolicyLimits } from '../safety/failsafe.ts';
import { effectivePeriodMs, type WriteBacklog } from '../safety/overload.ts';
import { stallExplainsTimeout } from '../safety/stalls.ts';
import { type EluSource, OverloadMonitor } from './overload.ts';
import type { Caches } from './policy.ts';
import type { FailsafeStatus, OverloadStatus, PolicyProbeConfig, ProbeManager } from './probe-manager.ts';
import { failsafeWindowMs, flipTime } from './share-counts.ts';
import { type StallSource, watchStalls } from './stall-watch.ts';

export interface ProbeManagerDeps {
  kc: KubeConfig;
  clock: Clock;
  log: Logger;
  metrics: Metrics;
  concurrency: number;
  enableExec: boolean;
  caches: Caches;
  events: EventSink;
  /** A pod's desired conditions changed: reconcile it. */
  onDesiredChange: (pod: Request) => void;
  /** A policy's failsafe hold or overload state changed: reconcile its status. */
  onStatusChange: (policy: Request) => void;
  /** Pod writes waiting: probe starts yield to them under overload (src/safety/overload.ts). */
  writes: () => WriteBacklog;
  /** Largest factor steady probe periods may be stretched by (src/safety/overload.ts). */
  maxStretch?: number;
  /** Event loop utilisation source, for tests (default: the process's). */
  elu?: EluSource;
  /**
   * Whether this replica owns a pod now (its bucket's Lease is held, docs/sharding.md); default
   * every pod. Asked inside syncPolicy's synchronous loop, so a bucket lost while the reconciler
   * awaited cannot come back.
   */
  owns?: (podUid: string) => boolean;
  /**
   * From when another replica may have stopped probing this pod (its bucket was just taken over,
   * src/safety/sharding.ts handoverSince); undefined: no handover to make up for.
   */
  missedSince?: (podUid: string) => number | undefined;
  /** How long the operator itself stalled in a window (src/safety/stalls.ts); default a heartbeat. */
  stalls?: StallSource;
}

interface Target {
  key: string;
  policyKey: string;
  podUid: string;
  pod: Request;
  // What the probe depends on besides the pod's identity; a change restarts the target.
  generation: number | undefined;
  podIP: string | undefined;
  running: boolean;
  caPem: string | undefined;
  /** The syncPolicy pass that last wanted this target (older ones are removed). */
  pass: number;
  debouncer: Debouncer;
  desired?: DesiredPodCondition;
  dryRun: boolean;
  /** True while the failsafe holds this target's flip to False. */
  held: boolean;
  /**
   * Sharded: seeded from a condition another replica may have written moments before, so the
   * first write checks the pod's resourceVersion (docs/sharding.md §5, risk 2).
   */
  guarded: boolean;
}

interface PolicyState {
  uid: string;
  name: string;
  namespace: string;
  spec: ProbePolicy['spec'];
  generation: number | undefined;
  /** The probe handler's name, for metrics. */
  handler: string;
  /** Pod UID → target. */
  targets: Map<string, Target>;
  /** Counts syncPolicy passes (see Target.pass). */
  pass: number;
  /** The policy's targets in every bucket, this replica's and the others' (the failsafe's budget). */
  globalTargets: number;
}

/** Creates the ProbeManager over the probe engine in src/probes. */
export function createProbeManager(deps: ProbeManagerDeps): ProbeManager {
  return new ProbeRunner(deps);
}

class ProbeRunner implements ProbeManager {
  readonly #deps: ProbeManagerDeps;
  readonly #policies = new Map<string, PolicyState>();
  readonly #byPod = new Map<string, Map<string, Target>>(); // pod UID → target key → target
  readonly #failsafe = new Failsafe();
  readonly #scheduler: ProbeScheduler;
  readonly #overload: OverloadMonitor;
  readonly #crashLog = new CrashLogLimiter();
  readonly #stalls: StallSource;

  constructor(deps: ProbeManagerDeps) {
    this.#deps = deps;
    this.#stalls = deps.stalls ?? watchStalls();
    this.#scheduler = new ProbeScheduler({
      clock: deps.clock,
      concurrency: deps.concurrency,
      onResult: (key, result) => this.#onResult(key, result),
      onCrash: (key, crash) => this.#onCrash(key, crash),
      yieldTo: () => this.#overload.yielding(),
    });
    this.#overload = new OverloadMonitor({
      clock: deps.clock,
      scheduler: this.#scheduler,
      writes: deps.writes,
      maxStretch: deps.maxStretch,
      elu: deps.elu,
      onChange: (change) => this.#onStretch(change.from, change.to),
    });
  }

  syncPolicy(policy: ProbePolicy, pods: readonly V1Pod[], config: PolicyProbeConfig): void {
    const state = this.#policyState(policy, pods);
    // Each replica caching only its buckets' pods: the others' targets and flips come from their counts.
    state.globalTargets = pods.length + (config.elsewhere?.targets ?? 0);
    for (const f of config.elsewhere?.flips ?? []) this.#failsafe.noteForeignFlip(keyOf(state), f.id, f.at);
    // Runs over every matched pod on every policy reconcile: an unchanged target costs a map
    // lookup and four comparisons, and allocates nothing.
    const pass = ++state.pass;
    const owns = this.#deps.owns;
    for (const pod of pods) {
      const uid = pod.metadata?.uid ?? '';
      if (owns !== undefined && !owns(uid)) continue;
      const existing = state.targets.get(uid);
      if (existing !== undefined && unchanged(existing, state, pod, config)) existing.pass = pass;
      else this.#upsertTarget(state, pod, config, existing, pass);
    }
    // Deleting the current entry while iterating a Map is safe.
    for (const t of state.targets.values()) if (t.pass !== pass) this.#removeTarget(state, t);
    this.#failsafe.updateLimits(keyOf(state), limitsOf(state));
  }

  releaseUnowned(): void {
    const owns = this.#deps.owns;
    if (owns === undefined) return;
    for (const state of this.#policies.values()) {
      for (const t of state.targets.values()) if (!owns(t.podUid)) this.#removeTarget(state, t);
      this.#failsafe.updateLimits(keyOf(state), limitsOf(state));
    }
  }

  writeGuarded(podUid: string): boolean {
    for (const t of this.#byPod.get(podUid)?.values() ?? []) if (t.guarded) return true;
    return false;
  }

  written(podUid: string): void {
    for (const t of this.#byPod.get(podUid)?.values() ?? []) t.guarded = false;
  }

  reseed(pod: V1Pod): void {
    const now = this.#deps.clock.now();
    for (const t of this.#byPod.get(pod.metadata?.uid ?? '')?.values() ?? []) {
      const state = this.#policies.get(t.policyKey);
      if (!state) continue;
      const seed = pod.status?.conditions?.find((c) => c.type === state.spec.conditionType);
      // A debouncer that already agrees with the pod keeps its counts: only a stale seed is replaced.
      if (t.debouncer.desired(now)?.status === seed?.status) continue;
      t.debouncer = new Debouncer(state.spec, seed, t.running ? now : undefined);
      if (t.running) t.debouncer.markRunning(now);
      t.desired = undefined;
    }
  }

  removePolicy(policyKey: string): void {
    const state = this.#policies.get(policyKey);
    if (!state) return;
    for (const t of [...state.targets.values()]) this.#removeTarget(state, t);
    this.#policies.delete(policyKey);
    this.#failsafe.removePolicy(policyKey);
    this.#deps.metrics.policyRemoved(state.namespace, state.name);
  }

  desiredFor(podUid: string): DesiredPodCondition[] {
    const out: DesiredPodCondition[] = [];
    for (const t of this.#byPod.get(podUid)?.values() ?? []) if (t.desired && !t.dryRun) out.push(t.desired);
    return out;
  }

  failsafe(policyKey: string): FailsafeStatus | undefined {
    return this.#failsafe.status(policyKey);
  }

  failsafeStats(): { held: Record<string, number>; couldNotLookRatio: number } {
    return { held: this.#failsafe.heldTargets(), couldNotLookRatio: this.#failsafe.couldNotLookRatio() };
  }

  shardReport(): { stretch: number; held: Map<string, FailsafeStatus['reason']> } {
    const held = new Map<string, FailsafeStatus['reason']>();
    for (const key of this.#policies.keys()) {
      const reason = this.#failsafe.status(key)?.reason;
      if (reason) held.set(key, reason);
    }
    return { stretch: this.#overload.stretch, held };
  }

  overload(policyKey: string, peerStretch = 1): OverloadStatus | undefined {
    const state = this.#policies.get(policyKey);
    const stretch = Math.max(this.#overload.stretch, peerStretch);
    if (!state || stretch === 1) return undefined;
    const period = state.spec.probe.periodSeconds ?? 10;
    return overloadStatus(period, stretch, this.#overload.maxStretch);
  }

  overloadStats(): OverloadStats {
    const stretch = this.#overload.stretch;
    const periods = [...this.#policies.values()].map((p) => ({
      namespace: p.namespace,
      policy: p.name,
      seconds: effectivePeriodMs((p.spec.probe.periodSeconds ?? 10) * 1000, stretch) / 1000,
    }));
    return { stretch, eventLoopUtilization: this.#overload.elu, periods };
  }

  stop(): void {
    this.#stalls.stop();
    this.#overload.stop();
    this.#scheduler.stop();
  }

  /** The stretch factor changed: every policy's status says so, with one Event as overload begins. */
  #onStretch(from: number, to: number): void {
    const { log, events, onStatusChange } = this.#deps;
    if (from === 1) log.warn({ stretch: to }, 'probing cannot keep up: periods of settled targets stretched');
    else if (to === 1) log.info("probing caught up: periods back to the policies' own");
    else log.info({ stretch: to }, 'probe period stretch changed');
    for (const state of this.#policies.values()) {
      if (from === 1) {
        const period = state.spec.probe.periodSeconds ?? 10;
        events.record(
          refOf(state),
          'Warning',
          'ProbesOverloaded',
          overloadStatus(period, to, this.#overload.maxStretch).message,
        );
      }
      onStatusChange({ namespace: state.namespace, name: state.name });
    }
  }

  /** The state of a policy, created (with the failsafe seeded from its pods) or updated. */
  #policyState(policy: ProbePolicy, pods: readonly V1Pod[]): PolicyState {
    const key = `${policy.metadata?.namespace ?? ''}/${policy.metadata?.name ?? ''}`;
    let state = this.#policies.get(key);
    if (state && state.uid !== policy.metadata?.uid) {
      this.removePolicy(key);
      state = undefined;
    }
    if (!state) {
      state = {
        uid: policy.metadata?.uid ?? '',
        name: policy.metadata?.name ?? '',
        namespace: policy.metadata?.namespace ?? '',
        spec: policy.spec,
        generation: policy.metadata?.generation,
        handler: handlerOf(policy.spec),
        targets: new Map(),
        pass: 0,
        globalTargets: pods.length,
      };
      this.#policies.set(key, state);
      this.#deps.metrics.policyAdded(state.namespace, state.name);
      this.#seedFailsafe(state, pods);
    }
    // Keep one spec object per generation: compiled probers are cached per spec object, and
    // every status write hands us a new (equal) policy object.
    if (state.generation !== policy.metadata?.generation) {
      state.spec = policy.spec;
      state.generation = policy.metadata?.generation;
      state.handler = handlerOf(policy.spec);
    }
    return state;
  }

  /**
   * The failsafe of a new policy, seeded with the flips readygate already wrote on its pods: this
   * replica's own count against its share, the other replicas' against the global budget only.
   */
  #seedFailsafe(state: PolicyState, pods: readonly V1Pod[]): void {
    const owns = this.#deps.owns ?? (() => true);
    const type = state.spec.conditionType;
    const mine = pods.filter((p) => owns(p.metadata?.uid ?? ''));
    const key = keyOf(state);
    this.#failsafe.addPolicy(key, recentFlips(mine, type), this.#deps.clock.now(), limitsOf(state, mine.length));
    if (mine.length === pods.length) return;
    for (const pod of pods) {
      const at = owns(pod.metadata?.uid ?? '') ? undefined : flipTime(pod, type);
      if (at !== undefined) this.#failsafe.noteForeignFlip(key, pod.metadata?.uid ?? '', at);
    }
  }

  foreignFlip(pod: V1Pod, old: V1Pod | undefined): void {
    const uid = pod.metadata?.uid ?? '';
    if (this.#deps.owns?.(uid) !== false) return;
    for (const state of this.#policies.values()) {
      if (state.namespace !== pod.metadata?.namespace) continue;
      const at = flipTime(pod, state.spec.conditionType);
      // Noted once per flip: the condition's transition time moves only when it flips again.
      if (at !== undefined && at !== (old && flipTime(old, state.spec.conditionType))) {
        this.#failsafe.noteForeignFlip(keyOf(state), uid, at);
      }
    }
  }

  #upsertTarget(state: PolicyState, pod: V1Pod, config: PolicyProbeConfig, existing: Target | undefined, pass: number) {
    const { spec, generation } = state;
    const policyKey = keyOf(state);
    const podUid = pod.metadata?.uid ?? '';
    const running = pod.status?.phase === 'Running';
    const key = existing?.key ?? `${policyKey}#${podUid}`;
    const seed = pod.status?.conditions?.find((c) => c.type === spec.conditionType);
    const runningSince = running ? this.#deps.clock.now() : undefined;
    // Seeded from the condition already on the pod, so a restart or a spec change does not flip
    // a healthy gate (README, "What readygate writes").
    const debouncer = existing?.debouncer.withSpec(spec) ?? new Debouncer(spec, seed, runningSince);
    if (runningSince !== undefined) debouncer.markRunning(runningSince);
    const target: Target = {
      key,
      policyKey,
      podUid,
      pod: { namespace: state.namespace, name: pod.metadata?.name ?? '' },
      generation,
      podIP: pod.status?.podIP,
      running,
      caPem: config.caPem,
      pass,
      debouncer,
      desired: existing?.desired,
      dryRun: spec.dryRun ?? false,
      held: existing?.held ?? false,
      guarded: existing ? existing.guarded : this.#deps.owns !== undefined && seed !== undefined,
    };
    state.targets.set(podUid, target);
    const perPod = this.#byPod.get(podUid) ?? new Map<string, Target>();
    this.#byPod.set(podUid, perPod);
    perPod.set(key, target);
    this.#failsafe.addTarget(key);
    this.#overload.start();
    this.#scheduler.upsert({
      key,
      periodMs: (spec.probe.periodSeconds ?? 10) * 1000,
      timeoutMs: longestRunMs(spec.probe),
      // A pod that just got its IP is probed at once (time to gate); a restart or a re-sync
      // spreads probes over the period by key instead (no thundering herd).
      immediate: !existing && !seed,
      // A pod taken over from another replica is probed at once if the handover spanned its slot,
      // rather than a period after its last probe (docs/sharding.md, probe gaps).
      missedSince: existing ? undefined : this.#deps.missedSince?.(podUid),
      // Probe slots are shared fairly between namespaces, then policies (src/probes/fair-queue.ts).
      tenant: { namespace: state.namespace, policy: state.name },
      // Under overload only settled targets are stretched: new and changing ones keep their period.
      steady: () => target.debouncer.settled(),
      run: (signal) => this.#runTarget(target, spec, signal),
    });
  }

  #runTarget(target: Target, spec: ProbePolicy['spec'], signal: AbortSignal): Promise<ProbeResult> {
    // Like the kubelet, no probe before initialDelaySeconds after the pod runs.
    if (!target.debouncer.shouldProbe(this.#deps.clock.now())) return Promise.resolve(NOT_YET);
    // The pod is read from the cache at each run rather than held by this closure, so 10,000
    // targets do not keep 10,000 stale pod objects alive next to the cache.
    const current = this.#deps.caches.pods.get(target.pod.namespace, target.pod.name);
    if (current?.metadata?.uid !== target.podUid) return Promise.resolve(NOT_YET);
    return runProbe({ probe: spec.probe, pod: current, caPem: target.caPem, kc: this.#deps.kc, signal });
  }

  #removeTarget(state: PolicyState, target: Target): void {
    this.#scheduler.remove(target.key);
    state.targets.delete(target.podUid);
    const perPod = this.#byPod.get(target.podUid);
    perPod?.delete(target.key);
    if (perPod?.size === 0) this.#byPod.delete(target.podUid);
    this.#report(state, this.#failsafe.removeTarget(keyOf(state), target.key, this.#deps.clock.now()));
  }

  #lookup(key: string): { state: PolicyState; target: Target } | undefined {
    const hash = key.lastIndexOf('#');
    const state = this.#policies.get(key.slice(0, hash));
    const target = state?.targets.get(key.slice(hash + 1));
    return state && target ? { state, target } : undefined;
  }

  #onResult(key: string, raw: ProbeResult): void {
    const found = this.#lookup(key);
    if (!found || raw === NOT_YET) return;
    const result = this.#discountStall(raw);
    const { state, target } = found;
    const { metrics, clock } = this.#deps;
    metrics.probesTotal.inc({
      policy: state.name,
      namespace: state.namespace,
      result: result.couldNotLook ? 'error' : result.outcome === 'success' ? 'success' : 'failure',
    });
    metrics.probeDuration.observe(
      { policy: state.name, namespace: state.namespace, handler: state.handler },
      (result.durationMs ?? 0) / 1000,
    );
    const now = clock.now();
    this.#report(state, this.#failsafe.observe(key, result.couldNotLook, keyOf(state)));
    this.#report(state, this.#failsafe.tick(keyOf(state), now));
    // While the operator is blind, a could-not-look result is no observation and breaks the run of
    // results it would have joined (src/safety/failsafe.ts).
    const seen = this.#failsafe.isObservation(result.couldNotLook);
    if (!seen) target.debouncer.interrupt();
    const next = seen ? target.debouncer.observe(result, now) : target.debouncer.desired(now);
    if (!next) return;
    const wasTrue = (target.desired?.status ?? this.#observedStatus(state, target)) === 'True';
    if (next.status === 'False' && wasTrue) {
      const { verdict, transitions } = this.#failsafe.requestFlip(keyOf(state), key, now);
      this.#report(state, transitions);
      if (!verdict.admit) {
        this.#hold(state, target, verdict.reason);
        return;
      }
    } else if (target.held) {
      this.#report(state, this.#failsafe.release(keyOf(state), key, now));
    }
    target.held = false;
    if (same(target.desired, next)) return;
    target.desired = { type: state.spec.conditionType, ...next };
    if (!target.dryRun) this.#deps.onDesiredChange(target.pod);
  }

  /** A timeout whose window the operator itself mostly spent stalled observes nothing (src/safety/stalls.ts). */
  #discountStall(result: ProbeResult): ProbeResult {
    if (result.outcome !== 'timeout') return result;
    const end = performance.now();
    const window = result.durationMs ?? 0;
    const stalled = this.#stalls.stalledWithin(end - window, end);
    if (!stallExplainsTimeout(window, stalled)) return result;
    this.#deps.metrics.probesDiscountedTotal.inc();
    const seconds = (stalled / 1000).toFixed(1);
    const message = `${result.message}; not counted: the operator itself was stalled for ${seconds}s meanwhile`;
    return { ...result, outcome: 'unknown', couldNotLook: true, message };
  }

  /**
   * A probe crashed inside readygate (src/safety/containment.ts): the run already became a failure
   * result; here it is counted and logged with its stack, at most a burst of lines per minute.
   */
  #onCrash(key: string, crash: ProbeCrash): void {
    const found = this.#lookup(key);
    const handler = found?.state.handler ?? 'unknown';
    this.#deps.metrics.probeCrashesTotal.inc({ handler, kind: crash.kind });
    const admitted = this.#crashLog.admit(this.#deps.clock.now());
    if (!admitted.log) return;
    this.#deps.log.error(
      {
        policy: found?.state.name,
        namespace: found?.state.namespace,
        pod: found?.target.pod.name,
        handler,
        kind: crash.kind,
        err: crash.error,
        ...(admitted.suppressed > 0 ? { suppressedCrashLogs: admitted.suppressed } : {}),
      },
      'probe crashed inside readygate; reported as a failure that could not look',
    );
  }

  #hold(state: PolicyState, target: Target, reason: string): void {
    if (target.held) return;
    target.held = true;
    this.#deps.log.warn(
      { policy: state.name, namespace: state.namespace, pod: target.pod.name, reason },
      'failsafe holds flip to False',
    );
  }

  #observedStatus(state: PolicyState, target: Target): string | undefined {
    const pod = this.#deps.caches.pods.get(target.pod.namespace, target.pod.name);
    return pod?.status?.conditions?.find((c) => c.type === state.spec.conditionType)?.status;
  }

  /** Turns failsafe transitions into a log line, one Event and a metric per hold, and a status reconcile. */
  #report(origin: PolicyState, transitions: readonly FailsafeTransition[]): void {
    const { log, metrics, events, onStatusChange } = this.#deps;
    for (const t of transitions) {
      const state = t.policy === keyOf(origin) ? origin : this.#policies.get(t.policy);
      if (!state) continue;
      const ref = refOf(state);
      if (t.reason) {
        log.warn({ policy: state.name, namespace: state.namespace, reason: t.reason }, 'failsafe holding flips');
        metrics.failsafeTripsTotal.inc({ policy: state.name, namespace: state.namespace, reason: t.reason });
        events.record(ref, 'Warning', t.reason === 'Failsafe' ? 'FailsafeTripped' : 'FailsafeCouldNotLook', t.message);
      } else {
        log.info({ policy: state.name, namespace: state.namespace }, 'failsafe cleared');
      }
      onStatusChange({ namespace: state.namespace, name: state.name });
    }
  }
}

/** The Degraded condition of a policy whose settled targets run at a stretched period. */
function overloadStatus(periodSeconds: number, stretch: number, maxStretch: number): OverloadStatus {
  const effective = effectivePeriodMs(periodSeconds * 1000, stretch) / 1000;
  const capped = stretch >= maxStretch ? ', the most it stretches: further probes wait their turn' : '';
  return {
    reason: 'Overloaded',
    stretch,
    effectivePeriodSeconds: effective,
    message: `the operator cannot keep every probe period: settled pods are probed every ${effective}s instead of ${periodSeconds}s (x${stretch}${capped}); new and changing pods keep ${periodSeconds}s`,
  };
}

function refOf(state: PolicyState) {
  return { apiVersion: API_VERSION, kind: KIND, namespace: state.namespace, name: state.name, uid: state.uid };
}

function keyOf(state: PolicyState): string {
  return `${state.namespace}/${state.name}`;
}

function limitsOf(state: PolicyState, targets = state.targets.size): PolicyLimits {
  const globalTargets = Math.max(targets, state.globalTargets);
  return {
    windowMs: failsafeWindowMs(state.spec),
    maxUnavailable: state.spec.failsafe?.maxUnavailable ?? '50%',
    targets,
    globalTargets,
  };
}

/** Times of the flips to False readygate already wrote on these pods (the failsafe's seed). */
function recentFlips(pods: readonly V1Pod[], conditionType: string): number[] {
  const out: number[] = [];
  for (const pod of pods) {
    const at = flipTime(pod, conditionType);
    if (at !== undefined) out.push(at);
  }
  return out;
}

function unchanged(t: Target, state: PolicyState, pod: V1Pod, config: PolicyProbeConfig): boolean {
  return (
    t.generation === state.generation &&
    t.podIP === pod.status?.podIP &&
    t.running === (pod.status?.phase === 'Running') &&
    t.caPem === config.caPem
  );
}

function handlerOf(spec: ProbePolicy['spec']): string {
  const probe = spec.probe;
  if (probe.httpGet) return 'httpGet';
  if (probe.tcpSocket) return 'tcpSocket';
  if (probe.grpc) return 'grpc';
  return probe.exec ? 'exec' : 'unknown';
}

/** The result of a run skipped before initialDelaySeconds; never observed. */
const NOT_YET: ProbeResult = { outcome: 'failure', couldNotLook: false, message: 'initial delay', durationMs: 0 };

function same(a: DesiredPodCondition | undefined, b: Omit<DesiredPodCondition, 'type'>): boolean {
  return a !== undefined && a.status === b.status && a.reason === b.reason && a.message === b.message;
}

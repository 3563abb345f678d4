// The ProbeManager implementation: one scheduled target per (policy, pod), a debouncer per target
// seeded from the pod's condition, the failsafe per policy, and desired conditions per pod UID.
import type { KubeConfig, V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { DesiredPodCondition } from '../api/conditions.ts';
import { API_VERSION, KIND, type ProbePolicy } from '../api/types.ts';
import type { EventSink } from '../kube/events.ts';
import type { Metrics } from '../observability/metrics.ts';
import { Debouncer } from '../probes/debouncer.ts';
import { runProbe } from '../probes/probe.ts';
import { scaledMaxUnavailable } from '../probes/rounds.ts';
import { ProbeScheduler } from '../probes/scheduler.ts';
import type { ProbeResult } from '../probes/types.ts';
import type { Clock } from '../runtime/clock.ts';
import type { Request } from '../runtime/controller.ts';
import type { Caches } from './policy.ts';
import type { PolicyProbeConfig, ProbeManager } from './probe-manager.ts';

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
  /** A policy's failsafe tripped or cleared: reconcile its status. */
  onFailsafeChange: (policy: Request) => void;
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
  /** Flips to False let through in the current failsafe window (one period long). */
  windowStart: number;
  flipsInWindow: number;
  tripped?: { message: string };
}

/** Creates the ProbeManager over the probe engine in src/probes. */
export function createProbeManager(deps: ProbeManagerDeps): ProbeManager {
  const policies = new Map<string, PolicyState>();
  const byPod = new Map<string, Map<string, Target>>(); // pod UID → target key → target

  const scheduler = new ProbeScheduler({
    clock: deps.clock,
    concurrency: deps.concurrency,
    onResult: (key, result) => onResult(key, result),
  });

  function lookup(key: string): { state: PolicyState; target: Target } | undefined {
    const hash = key.lastIndexOf('#');
    const state = policies.get(key.slice(0, hash));
    const target = state?.targets.get(key.slice(hash + 1));
    return state && target ? { state, target } : undefined;
  }

  function onResult(key: string, result: ProbeResult): void {
    const found = lookup(key);
    if (!found || result === NOT_YET) return;
    const { state, target } = found;
    deps.metrics.probesTotal.inc({
      policy: state.name,
      namespace: state.namespace,
      result: result.couldNotLook ? 'error' : result.outcome === 'success' ? 'success' : 'failure',
    });
    deps.metrics.probeDuration.observe({ policy: state.name, handler: state.handler }, (result.durationMs ?? 0) / 1000);
    const next = target.debouncer.observe(result, deps.clock.now());
    maybeClearTrip(state);
    if (!next) return;
    const wasTrue = (target.desired?.status ?? observedStatus(target)) === 'True';
    if (next.status === 'False' && wasTrue && !admitFlip(state)) {
      if (!target.held) {
        target.held = true;
        deps.log.warn({ policy: state.name, pod: target.pod.name }, 'failsafe holds flip to False');
      }
      return;
    }
    target.held = false;
    if (same(target.desired, next)) return;
    target.desired = { type: state.spec.conditionType, ...next };
    if (!target.dryRun) deps.onDesiredChange(target.pod);
  }

  function observedStatus(target: Target): string | undefined {
    const pod = deps.caches.pods.get(target.pod.namespace, target.pod.name);
    const type = policies.get(target.policyKey)?.spec.conditionType;
    return pod?.status?.conditions?.find((c) => c.type === type)?.status;
  }

  // A window spans a failureThreshold's worth of periods: a mass outage reaches every target's
  // threshold within it, whatever the phase spread.
  function windowMs(state: PolicyState): number {
    return (state.spec.probe.periodSeconds ?? 10) * 1000 * Math.max(1, state.spec.probe.failureThreshold ?? 3);
  }

  /** Ends a failsafe hold once a whole window passed with no target held. */
  function maybeClearTrip(state: PolicyState): void {
    if (!state.tripped) return;
    const now = deps.clock.now();
    if ([...state.targets.values()].some((t) => t.held)) {
      state.windowStart = now;
      return;
    }
    if (now - state.windowStart > windowMs(state)) {
      state.tripped = undefined;
      state.windowStart = now;
      state.flipsInWindow = 0;
      deps.log.info({ policy: state.name }, 'failsafe cleared');
      deps.onFailsafeChange({ namespace: state.namespace, name: state.name });
    }
  }

  /** Admits one True→False flip unless more than maxUnavailable flipped in this window. */
  function admitFlip(state: PolicyState): boolean {
    const now = deps.clock.now();
    if (!state.tripped && now - state.windowStart > windowMs(state)) {
      state.windowStart = now;
      state.flipsInWindow = 0;
    }
    const max = scaledMaxUnavailable(state.spec.failsafe?.maxUnavailable ?? '50%', state.targets.size);
    if (state.flipsInWindow < max && !state.tripped) {
      state.flipsInWindow++;
      return true;
    }
    if (!state.tripped) {
      const held = [...state.targets.values()].filter((t) => t.held).length + 1;
      state.tripped = {
        message: `more than maxUnavailable (${max}) of ${state.targets.size} pods would flip to False at once; holding their current status (${held} held so far). Check connectivity from the operator to the pods.`,
      };
      deps.metrics.failsafeTripsTotal.inc({ policy: state.name, namespace: state.namespace });
      deps.events.record(
        { apiVersion: API_VERSION, kind: KIND, namespace: state.namespace, name: state.name, uid: state.uid },
        'Warning',
        'FailsafeTripped',
        state.tripped.message,
      );
      deps.onFailsafeChange({ namespace: state.namespace, name: state.name });
    }
    return false;
  }

  function removeTarget(state: PolicyState, target: Target): void {
    scheduler.remove(target.key);
    state.targets.delete(target.podUid);
    const perPod = byPod.get(target.podUid);
    perPod?.delete(target.key);
    if (perPod?.size === 0) byPod.delete(target.podUid);
  }

  return {
    syncPolicy(policy: ProbePolicy, pods: readonly V1Pod[], config: PolicyProbeConfig): void {
      const ns = policy.metadata?.namespace ?? '';
      const name = policy.metadata?.name ?? '';
      const policyKey = `${ns}/${name}`;
      let state = policies.get(policyKey);
      if (state && state.uid !== policy.metadata?.uid) {
        for (const t of [...state.targets.values()]) removeTarget(state, t);
        state = undefined;
      }
      if (!state) {
        state = {
          uid: policy.metadata?.uid ?? '',
          name,
          namespace: ns,
          spec: policy.spec,
          generation: policy.metadata?.generation,
          handler: handlerOf(policy.spec),
          targets: new Map(),
          pass: 0,
          windowStart: deps.clock.now(),
          flipsInWindow: 0,
        };
        policies.set(policyKey, state);
      }
      // Keep one spec object per generation: compiled probers are cached per spec object, and
      // every status write hands us a new (equal) policy object.
      if (state.generation !== policy.metadata?.generation) {
        state.spec = policy.spec;
        state.generation = policy.metadata?.generation;
        state.handler = handlerOf(policy.spec);
      }
      const spec = state.spec;
      const generation = state.generation;
      const caPem = config.caPem;
      // Runs over every matched pod on every policy reconcile: an unchanged target costs a map
      // lookup and four comparisons, and allocates nothing.
      const pass = ++state.pass;
      for (const pod of pods) {
        const podUid = pod.metadata?.uid ?? '';
        const podIP = pod.status?.podIP;
        const running = pod.status?.phase === 'Running';
        const existing = state.targets.get(podUid);
        if (
          existing !== undefined &&
          existing.generation === generation &&
          existing.podIP === podIP &&
          existing.running === running &&
          existing.caPem === caPem
        ) {
          existing.pass = pass;
          continue;
        }
        const key = existing?.key ?? `${policyKey}#${podUid}`;
        const seed = pod.status?.conditions?.find((c) => c.type === spec.conditionType);
        const runningSince = running ? deps.clock.now() : undefined;
        const debouncer = existing?.debouncer.withSpec(spec) ?? new Debouncer(spec, seed, runningSince);
        if (runningSince !== undefined) debouncer.markRunning(runningSince);
        const target: Target = {
          key,
          policyKey,
          podUid,
          pod: { namespace: ns, name: pod.metadata?.name ?? '' },
          generation,
          podIP,
          running,
          caPem,
          pass,
          // Seeded from the condition already on the pod, so a restart or a spec change does
          // not flip a healthy gate (api.md, "Restart").
          debouncer,
          desired: existing?.desired,
          dryRun: spec.dryRun ?? false,
          held: false,
        };
        state.targets.set(podUid, target);
        const perPod = byPod.get(podUid) ?? new Map<string, Target>();
        byPod.set(podUid, perPod);
        perPod.set(key, target);
        const probe = spec.probe;
        scheduler.upsert({
          key,
          periodMs: (spec.probe.periodSeconds ?? 10) * 1000,
          timeoutMs: (spec.probe.timeoutSeconds ?? 1) * 1000,
          // A pod that just got its IP is probed at once (time to gate); a restart or a
          // re-sync spreads probes over the period by key instead (no thundering herd).
          immediate: !existing && !seed,
          run: (signal) => {
            // Like the kubelet, no probe before initialDelaySeconds after the pod runs.
            if (!debouncer.shouldProbe(deps.clock.now())) return Promise.resolve(NOT_YET);
            // The pod is read from the cache at each run rather than held by this closure, so
            // 10,000 targets do not keep 10,000 stale pod objects alive next to the cache.
            const current = deps.caches.pods.get(ns, target.pod.name);
            if (current?.metadata?.uid !== podUid) return Promise.resolve(NOT_YET);
            return runProbe({ probe, pod: current, caPem, kc: deps.kc, signal });
          },
        });
      }
      // Deleting the current entry while iterating a Map is safe.
      for (const t of state.targets.values()) if (t.pass !== pass) removeTarget(state, t);
    },

    removePolicy(policyKey: string): void {
      const state = policies.get(policyKey);
      if (!state) return;
      for (const t of [...state.targets.values()]) removeTarget(state, t);
      policies.delete(policyKey);
    },

    desiredFor(podUid: string): DesiredPodCondition[] {
      const out: DesiredPodCondition[] = [];
      for (const t of byPod.get(podUid)?.values() ?? []) if (t.desired && !t.dryRun) out.push(t.desired);
      return out;
    },

    failsafe(policyKey: string) {
      return policies.get(policyKey)?.tripped;
    },

    stop(): void {
      scheduler.stop();
    },
  };
}

function handlerOf(spec: ProbePolicy['spec']): string {
  const probe = spec.probe;
  return probe.httpGet
    ? 'httpGet'
    : probe.tcpSocket
      ? 'tcpSocket'
      : probe.grpc
        ? 'grpc'
        : probe.exec
          ? 'exec'
          : 'unknown';
}

/** The result of a run skipped before initialDelaySeconds; never observed. */
const NOT_YET: ProbeResult = { outcome: 'failure', couldNotLook: false, message: 'initial delay', durationMs: 0 };

function same(a: DesiredPodCondition | undefined, b: Omit<DesiredPodCondition, 'type'>): boolean {
  return a !== undefined && a.status === b.status && a.reason === b.reason && a.message === b.message;
}

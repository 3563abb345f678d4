import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { LeaseCallObserver } from '../kube/lease.ts';
import type { ControllerHooks } from '../runtime/controller.ts';
import type { RestartReason } from '../runtime/informer.ts';
import type { WorkQueueMetricsProvider } from '../runtime/queue-metrics.ts';
import { policyGauges } from './policy-metrics.ts';
import { workqueueMetricsProvider } from './workqueue-metrics.ts';

// One private Registry per process (not prom-client's global one) so tests can create as many as
// they like and nothing registered by a dependency leaks into /metrics.

// Probe and reconcile durations: probes time out within seconds; reconciles may take longer.
const PROBE_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
// Lease calls: milliseconds when the API server is idle, up to the 10 s renew deadline when it is not.
const LEASE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const RECONCILE_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** Every metric the operator exports, typed by label names. */
export interface Metrics {
  readonly registry: Registry;
  /** Probe results: result is success | failure | error (operator could not look). */
  readonly probesTotal: Counter<'policy' | 'namespace' | 'result'>;
  /** Probe latency by policy, namespace and handler (httpGet | tcpSocket | grpc | exec). */
  readonly probeDuration: Histogram<'policy' | 'namespace' | 'handler'>;
  /** Condition patches on pods/status: result is success | conflict | notfound | error. */
  readonly conditionPatchesTotal: Counter<'result'>;
  /** Orphaned readiness gates set True, reason GateReleased (src/safety/gate-release.ts), by namespace. */
  readonly gatesReleasedTotal: Counter<'namespace'>;
  /** Failed API calls by verb, resource and HTTP status code (or a transport error name). */
  readonly apiErrorsTotal: Counter<'verb' | 'resource' | 'code'>;
  /** Keys ready in each controller's workqueue, read at scrape time. */
  readonly workqueueDepth: Gauge<'controller'>;
  /** Reconcile latency by controller and result (success | error | timeout). */
  readonly reconcileDuration: Histogram<'controller' | 'result'>;
  /** Failsafe holds begun, by policy, namespace and reason (Failsafe | CouldNotLook). */
  readonly failsafeTripsTotal: Counter<'policy' | 'namespace' | 'reason'>;
  /** 1 while this process holds the leader lease, else 0. */
  readonly leader: Gauge;
  /** client-go's leaderelection gauge: 1 while this process holds the Lease `name`, else 0. */
  readonly leaderElectionMasterStatus: Gauge<'name'>;
  /** client-go-compatible workqueue_* metrics (src/runtime/workqueue.ts), label name = the controller. */
  readonly workqueueMetrics: WorkQueueMetricsProvider;
  /** Probe timeouts not counted because the operator itself stalled (src/safety/stalls.ts). */
  readonly probesDiscountedTotal: Counter;
  /** Shard buckets held now (docs/sharding.md); 0 without sharding. */
  readonly shardBucketsOwned: Gauge;
  /** Buckets acquired or lost, by kind. */
  readonly shardBucketChangesTotal: Counter<'kind'>;
  /**
   * Lease calls (leader election and shard Leases) by verb and result (ok | conflict | notfound |
   * aborted | error): renewals nearing the renew deadline show here before a Lease is lost.
   */
  readonly leaseRequestDuration: Histogram<'verb' | 'result'>;
  /** Informer restarts by informer and reason (error | stall | resync). */
  readonly informerRestartsTotal: Counter<'informer' | 'reason'>;
  /**
   * Probe runs that crashed inside readygate and were turned into failures (src/safety/containment.ts),
   * by handler and kind (threw | rejected | invalid-result | result-handler).
   */
  readonly probeCrashesTotal: Counter<'handler' | 'kind'>;
  /** Errors no code caught, that the process survived (src/runtime/unexpected.ts): uncaughtException | unhandledRejection. */
  readonly unexpectedErrorsTotal: Counter<'kind'>;
  /** Reports the overload state (src/safety/overload.ts) at each scrape. */
  registerOverload(stats: () => OverloadStats): void;
  /** Reports the failsafe's held targets and could-not-look share at each scrape. */
  registerFailsafe(stats: () => { held: Record<string, number>; couldNotLookRatio: number }): void;
  /** Reports `size()` as the objects the informer `informer` caches, at each scrape. */
  registerInformerObjects(informer: string, size: () => number): void;
  /** Reports whether pods are listed and watched per held bucket (shardSelector honoured) and how many bucket watches run. */
  registerPodWatch(stats: () => { sharded: boolean; buckets: number }): void;
  /** Reports `depth()` as the workqueue depth of `controller` at each scrape; returns an unregister function. */
  registerWorkqueue(controller: string, depth: () => number): () => void;
  /** A policy appeared: its labelled counters start at 0, so rate() and absent() work from the start. */
  policyAdded(namespace: string, policy: string): void;
  /** A policy went: every series labelled with it is removed, so per-policy series do not pile up. */
  policyRemoved(namespace: string, policy: string): void;
  /** Sets the readygate_policy_*_pods gauges from a policy's status; ungated undefined: not counted. */
  setPolicyPods(namespace: string, policy: string, pods: PolicyPods): void;
  /** Removes the readygate_policy_*_pods gauges of a policy (deleted, or no longer written by this replica). */
  forgetPolicyPods(namespace: string, policy: string): void;
  /** Controller hooks that record reconcile durations by controller and result. */
  controllerHooks(): ControllerHooks;
  /** An `onRestart` callback for a ResilientInformer named `informer`. */
  informerRestartHook(informer: string): (reason: RestartReason) => void;
}

/** The pod counts of a policy's status (src/controllers/policy.ts desiredStatus). */
export interface PolicyPods {
  matched: number;
  ready: number;
  failing: number;
  ungated?: number;
}

/** The bounded label values of the per-policy counters, initialised at 0 when a policy appears. */
const PROBE_RESULTS = ['success', 'failure', 'error'] as const;
const FAILSAFE_REASONS = ['Failsafe', 'CouldNotLook'] as const;
/** probe-runner.ts handlerOf: the handlers a policy's probe can have. */
const HANDLERS = ['httpGet', 'tcpSocket', 'grpc', 'exec', 'unknown'] as const;

/** What the overload metrics show. */
export interface OverloadStats {
  stretch: number;
  /** Smoothed event loop utilisation, 0..1. */
  eventLoopUtilization: number;
  /** Effective probe period of each policy's steady targets, in seconds. */
  periods: { namespace: string; policy: string; seconds: number }[];
}

export interface MetricsOptions {
  /** Also export process_* and nodejs_* metrics. Default true. */
  defaultMetrics?: boolean;
}

/** Creates a private Registry holding every readygate metric (plus default process metrics). */
export function createMetrics(opts: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  const registers = [registry];
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });

  const depthSources = new Map<string, () => number>();
  const workqueueDepth = new Gauge<'controller'>({
    name: 'readygate_workqueue_depth',
    help: 'Keys ready to be reconciled, per controller.',
    labelNames: ['controller'],
    registers,
    // Pulled at scrape time: no per-add bookkeeping on a queue of 10,000+ keys.
    collect() {
      this.reset();
      for (const [controller, depth] of depthSources) this.set({ controller }, depth());
    },
  });

  const reconcileDuration = new Histogram<'controller' | 'result'>({
    name: 'readygate_reconcile_duration_seconds',
    help: 'Time spent in one reconcile, by controller and result.',
    labelNames: ['controller', 'result'],
    buckets: RECONCILE_BUCKETS,
    registers,
  });

  const informerRestartsTotal = new Counter<'informer' | 'reason'>({
    name: 'readygate_informer_restarts_total',
    help: 'Informer restarts, by informer and reason (error, stall, resync).',
    labelNames: ['informer', 'reason'],
    registers,
  });

  const objectSources = new Map<string, () => number>();
  new Gauge<'informer'>({
    name: 'readygate_informer_objects',
    help: 'Objects each informer caches now (pods: only the held buckets while the pod watch is sharded).',
    labelNames: ['informer'],
    registers,
    collect() {
      this.reset();
      for (const [informer, size] of objectSources) this.set({ informer }, size());
    },
  });
  let podWatch: (() => { sharded: boolean; buckets: number }) | undefined;
  new Gauge({
    name: 'readygate_pod_watch_sharded',
    help: '1 while pods are listed and watched per held bucket (the API server honours shardSelector), 0 while every pod is watched.',
    registers,
    collect() {
      this.set(podWatch?.().sharded ? 1 : 0);
    },
  });
  new Gauge({
    name: 'readygate_pod_watch_buckets',
    help: 'Bucket pod watches running now (0 unless the pod watch is sharded).',
    registers,
    collect() {
      this.set(podWatch?.().buckets ?? 0);
    },
  });

  let failsafeStats: (() => { held: Record<string, number>; couldNotLookRatio: number }) | undefined;
  new Gauge<'reason'>({
    name: 'readygate_failsafe_held_targets',
    help: 'Targets whose flip to False the failsafe holds now, by reason.',
    labelNames: ['reason'],
    registers,
    collect() {
      this.reset();
      for (const [reason, n] of Object.entries(failsafeStats?.().held ?? {})) this.set({ reason }, n);
    },
  });
  new Gauge({
    name: 'readygate_targets_could_not_look_ratio',
    help: 'Share of probe targets whose latest probe could not look (operator-side); above 0.5 every flip to False is held.',
    registers,
    collect() {
      this.set(failsafeStats?.().couldNotLookRatio ?? 0);
    },
  });

  let overloadStats: (() => OverloadStats) | undefined;
  overloadGauges(registers, () => overloadStats?.());

  const probesTotal = new Counter<'policy' | 'namespace' | 'result'>({
    name: 'readygate_probes_total',
    help: 'Probes run, by policy, namespace and result.',
    labelNames: ['policy', 'namespace', 'result'],
    registers,
  });
  const probeDuration = new Histogram<'policy' | 'namespace' | 'handler'>({
    name: 'readygate_probe_duration_seconds',
    help: 'Probe latency, by policy, namespace and handler.',
    labelNames: ['policy', 'namespace', 'handler'],
    buckets: PROBE_BUCKETS,
    registers,
  });
  const failsafeTripsTotal = new Counter<'policy' | 'namespace' | 'reason'>({
    name: 'readygate_failsafe_trips_total',
    help: 'Failsafe holds begun, by policy, namespace and reason (Failsafe: too many flips in a window; CouldNotLook: most targets unreachable from the operator).',
    labelNames: ['policy', 'namespace', 'reason'],
    registers,
  });
  const pods = policyGauges(registers);

  return {
    registry,
    probesTotal,
    probeDuration,
    conditionPatchesTotal: new Counter({
      name: 'readygate_condition_patches_total',
      help: 'Pod condition patches, by result.',
      labelNames: ['result'],
      registers,
    }),
    gatesReleasedTotal: new Counter({
      name: 'readygate_gates_released_total',
      help: 'Readiness gates no ProbePolicy provides any more whose condition was set True (reason GateReleased) after the grace period, by namespace.',
      labelNames: ['namespace'],
      registers,
    }),
    apiErrorsTotal: new Counter({
      name: 'readygate_api_errors_total',
      help: 'Failed Kubernetes API calls, by verb, resource and code.',
      labelNames: ['verb', 'resource', 'code'],
      registers,
    }),
    workqueueDepth,
    reconcileDuration,
    failsafeTripsTotal,
    leader: new Gauge({
      name: 'readygate_leader',
      help: '1 if this process is the leader, else 0.',
      registers,
    }),
    leaderElectionMasterStatus: new Gauge({
      name: 'leader_election_master_status',
      help: 'Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master. name is the string used to identify the lease.',
      labelNames: ['name'],
      registers,
    }),
    workqueueMetrics: workqueueMetricsProvider(registers),
    probesDiscountedTotal: new Counter({
      name: 'readygate_probe_timeouts_discounted_total',
      help: 'Probe timeouts not counted against a pod because the operator itself was stalled for most of the probe (descheduled, or its event loop blocked).',
      registers,
    }),
    shardBucketsOwned: new Gauge({
      name: 'readygate_shard_buckets_owned',
      help: 'Shard buckets whose pods this replica probes and writes now (0 without sharding).',
      registers,
    }),
    shardBucketChangesTotal: new Counter({
      name: 'readygate_shard_bucket_changes_total',
      help: 'Shard buckets this replica acquired or lost, by kind (acquired, lost).',
      labelNames: ['kind'],
      registers,
    }),
    leaseRequestDuration: new Histogram({
      name: 'readygate_lease_request_duration_seconds',
      help: 'Lease calls (leader election and shard Leases) by verb and result (ok, conflict, notfound, aborted, error).',
      labelNames: ['verb', 'result'],
      buckets: LEASE_BUCKETS,
      registers,
    }),
    informerRestartsTotal,
    probeCrashesTotal: new Counter({
      name: 'readygate_probe_crashes_total',
      help: 'Probe runs that crashed inside readygate and were reported as failures, by handler and kind.',
      labelNames: ['handler', 'kind'],
      registers,
    }),
    unexpectedErrorsTotal: new Counter({
      name: 'readygate_unexpected_errors_total',
      help: 'Errors no code caught (uncaughtException, unhandledRejection), logged and survived; any is a readygate bug.',
      labelNames: ['kind'],
      registers,
    }),
    policyAdded(namespace, policy) {
      for (const result of PROBE_RESULTS) probesTotal.labels({ policy, namespace, result }).inc(0);
      for (const reason of FAILSAFE_REASONS) failsafeTripsTotal.labels({ policy, namespace, reason }).inc(0);
    },
    policyRemoved(namespace, policy) {
      for (const result of PROBE_RESULTS) probesTotal.remove({ policy, namespace, result });
      for (const reason of FAILSAFE_REASONS) failsafeTripsTotal.remove({ policy, namespace, reason });
      for (const handler of HANDLERS) probeDuration.remove({ policy, namespace, handler });
    },
    setPolicyPods: pods.set,
    forgetPolicyPods: pods.forget,
    registerFailsafe(stats) {
      failsafeStats = stats;
    },
    registerOverload(stats) {
      overloadStats = stats;
    },
    registerInformerObjects(informer, size) {
      objectSources.set(informer, size);
    },
    registerPodWatch(stats) {
      podWatch = stats;
    },
    registerWorkqueue(controller, depth) {
      depthSources.set(controller, depth);
      return () => {
        if (depthSources.get(controller) === depth) depthSources.delete(controller);
      };
    },
    controllerHooks() {
      return {
        onReconcile: ({ controller, outcome, durationSeconds }) =>
          reconcileDuration.observe({ controller, result: outcome }, durationSeconds),
      };
    },
    informerRestartHook(informer) {
      return (reason) => informerRestartsTotal.inc({ informer, reason });
    },
  };
}

/** The gauges of graceful overload, read at scrape time. */
function overloadGauges(registers: Registry[], stats: () => OverloadStats | undefined): void {
  new Gauge({
    name: 'readygate_probe_period_stretch',
    help: 'Factor by which the probe periods of settled targets are stretched because the operator cannot keep them (1: none).',
    registers,
    collect() {
      this.set(stats()?.stretch ?? 1);
    },
  });
  new Gauge<'namespace' | 'policy'>({
    name: 'readygate_probe_effective_period_seconds',
    help: "Period at which each policy's settled targets are probed now: periodSeconds times the stretch.",
    labelNames: ['namespace', 'policy'],
    registers,
    collect() {
      this.reset();
      for (const p of stats()?.periods ?? []) this.set({ namespace: p.namespace, policy: p.policy }, p.seconds);
    },
  });
  new Gauge({
    name: 'readygate_event_loop_utilization',
    help: 'Share of the last second the event loop was busy, as the overload governor saw it (0..1).',
    registers,
    collect() {
      this.set(stats()?.eventLoopUtilization ?? 0);
    },
  });
}

/** Lease calls into readygate_lease_request_duration_seconds (src/kube/lease.ts's observer). */
export function leaseCallMetrics(metrics: Metrics): LeaseCallObserver {
  return (verb, result, seconds) => metrics.leaseRequestDuration.observe({ verb, result }, seconds);
}

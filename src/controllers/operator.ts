// The operator assembled: informers → workqueues → policy and pod reconcilers → probe manager,
// under a Manager, optionally behind leader election. main.ts only parses flags and calls this.
import { CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { OperatorOptions } from '../cli/options.ts';
import { statusCode } from '../kube/errors.ts';
import { EventRecorder } from '../kube/events.ts';
import { restLeaseSetClient } from '../kube/lease.ts';
import { startHealthServer } from '../observability/health.ts';
import { createMetrics, leaseCallMetrics, type Metrics } from '../observability/metrics.ts';
import { apiServerReviews, metricsAuthorizer } from '../observability/metrics-auth.ts';
import { type Clock, realClock } from '../runtime/clock.ts';
import { Controller, requestFromKey } from '../runtime/controller.ts';
import { FairTokenBucket } from '../runtime/fair-limiter.ts';
import type { ResilientInformer } from '../runtime/informer.ts';
import { Manager, type Runnable } from '../runtime/manager.ts';
import { handleUnexpectedErrors } from '../runtime/unexpected.ts';
import { Fence } from '../safety/fencing.ts';
import { StatusBatch, watchForKeys } from './event-handlers.ts';
import { createInformers, podInformer } from './informers.ts';
import { leaderElection, leaseFence, statusLeader, waitForNoLiveShards } from './leader.ts';
import { podReconciler } from './pod.ts';
import { detectShardSelector, ShardedPodCache } from './pod-cache.ts';
import { type Caches, policyReconciler } from './policy.ts';
import type { ProbeManager } from './probe-manager.ts';
import { createProbeManager } from './probe-runner.ts';
import { encodeReport, type PeerReports } from './shard-reports.ts';
import { createSharding, followPeers, handoverTimes, type Sharding, type WriteGuards, writeGuards } from './shards.ts';
import { ShareBook } from './share-counts.ts';

export interface Operator {
  manager: Manager;
  metrics: Metrics;
  /** Resolves when the operator has stopped (signal, leadership lost, or a fatal error). */
  run(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Builds every part of the operator from its options; nothing runs until run(). `leases` makes
 * the Lease calls (leader election, shard Leases): a KubeConfig of its own keeps them on a
 * connection of their own (src/cli/run.ts).
 */
export async function createOperator(
  kc: KubeConfig,
  opts: OperatorOptions,
  log: Logger,
  clock: Clock = realClock,
  leases: KubeConfig = kc,
): Promise<Operator> {
  const metrics = createMetrics();
  const fence = opts.leaderElect ? leaseFence(opts, clock) : Fence.unconditional();
  const late: Late = {};
  const book =
    opts.shardBuckets > 0
      ? new ShareBook({
          active: () => late.podCache?.sharded() ?? false,
          covered: () => late.podCache?.listedBuckets() ?? [],
          buckets: opts.shardBuckets,
        })
      : undefined;
  const sharded = book ? shardedParts(leases, opts, clock, log, metrics, fence, late, book) : undefined;
  const manager = new Manager({
    logger: log,
    clock,
    gracePeriodMs: opts.shutdownGraceMs,
    leaderElection: opts.leaderElect && !sharded ? leaderElection(leases, opts, clock, log, metrics, fence) : undefined,
  });
  const informers = createInformers(kc, opts, clock, log, metrics);
  const { policies } = informers;
  const pods = sharded ? shardedPodCache(kc, opts, clock, log, metrics, sharded, informers.pods) : informers.pods;
  late.podCache = pods instanceof ShardedPodCache ? pods : undefined;
  manager.addCache(pods, 'pods');
  metrics.registerInformerObjects('pods', () => pods.size());
  metrics.registerInformerObjects('probepolicies', () => policies.size());
  manager.addCache(policies, 'probepolicies');
  const caches: Caches = { pods, policies };

  const batch = new StatusBatch();
  const guards = writeGuards(fence, sharded?.sharding, () => late.podCache?.sharded() ?? false);
  const peers = sharded?.peers;
  const takeover = takeovers(opts, clock, sharded?.sharding);
  const parts = { kc, opts, clock, log, metrics, guards, caches, batch, peers, shares: book };
  const built = createControllers({ ...parts, missedSince: takeover.missedSince });
  const { probes, policyController, podController } = built;
  Object.assign(late, { probes, policyController, caches });
  const shardFilter = guards.shards && { ...guards.shards, foreignPod: probes.foreignFlip.bind(probes) };
  watchForKeys(pods, policies, podController, policyController, batch, shardFilter);

  // Unsharded, only the leader runs the controllers. Sharded, every replica does, and the
  // Leases are Runnables of their own, released only after the controllers drained.
  const noShards = opts.leaderElect && !sharded ? noShardsWait(leases, opts, clock, log, metrics) : undefined;
  manager.add(controllersRunnable(probes, policyController, podController, noShards, takeover.leading), 'controllers', {
    needLeaderElection: true,
  });
  for (const [name, r] of sharded?.runnables ?? []) manager.add(r, name, { needLeaderElection: false });
  if (!opts.leaderElect) metrics.leader.set(1);

  const health = await startHealthServer({
    host: opts.healthHost,
    port: opts.healthPort,
    ready: () => manager.ready(),
    registry: metrics.registry,
    ...(opts.metricsAuth ? { authorizeMetrics: metricsAuthorizer({ ...apiServerReviews(kc), clock }) } : {}),
    logger: log,
  });
  log.info({ url: health.url }, 'health server listening');

  return {
    manager,
    metrics,
    run: () =>
      runUntilStopped(manager, metrics, log, clock, async () => {
        probes.stop();
        await health.close();
      }),
    stop: () => manager.stop(),
  };
}

/** The unsharded leader's wait for shard bucket Leases to go (src/controllers/leader.ts). */
function noShardsWait(kc: KubeConfig, opts: OperatorOptions, clock: Clock, log: Logger, metrics: Metrics) {
  const client = restLeaseSetClient(kc, opts.leaderElectionNamespace, leaseCallMetrics(metrics));
  const { leaseDurationMs, retryPeriodMs } = opts;
  return (signal: AbortSignal) => waitForNoLiveShards({ client, clock, leaseDurationMs, retryPeriodMs, log }, signal);
}

/** What the sharded parts reach once the controllers exist. */
interface Late {
  probes?: ProbeManager;
  policyController?: Controller;
  caches?: Caches;
  podCache?: ShardedPodCache;
  /** Enqueues every policy (sharded only). */
  everyPolicy?: () => void;
}

/**
 * Sharded: the pod cache over the held buckets when the API server honours shardSelector, else
 * over every pod (src/controllers/pod-cache.ts). A bucket's policies pass again once its pods are
 * listed (their targets seeded from them) and once they are dropped (the share is counted again).
 */
function shardedPodCache(
  kc: KubeConfig,
  opts: OperatorOptions,
  clock: Clock,
  log: Logger,
  metrics: Metrics,
  sharded: { sharding: Sharding; late: Late },
  full: ResilientInformer<V1Pod>,
): ShardedPodCache {
  const { coordinator } = sharded.sharding;
  const cacheLog = log.child({ component: 'pod-cache' });
  const { namespaces, shardBuckets: buckets } = opts;
  const cache = new ShardedPodCache({
    buckets,
    held: () => coordinator.owned(),
    honoured: (signal) => detectShardSelector({ kc, namespaces, buckets, clock, log: cacheLog }, signal),
    full,
    bucketInformer: (selector) => podInformer(kc, opts, clock, log, metrics, selector),
    log: cacheLog,
    onListed: () => sharded.late.everyPolicy?.(),
    onDropped: () => sharded.late.everyPolicy?.(),
  });
  // After the sharding's own listeners: a lost bucket's targets are dropped before its pods.
  coordinator.onAcquired(() => cache.heldChanged());
  coordinator.onLost(() => cache.heldChanged());
  metrics.registerPodWatch(() => ({ sharded: cache.sharded(), buckets: cache.bucketWatches() }));
  return cache;
}

/**
 * Sharded (docs/sharding.md): every replica probes and writes the pods of the buckets it holds;
 * the leader Lease only picks the writer of policy status, which merges the others' reports.
 */
function shardedParts(
  /** For the Lease calls only. */
  leases: KubeConfig,
  opts: OperatorOptions,
  clock: Clock,
  log: Logger,
  metrics: Metrics,
  fence: Fence,
  late: Late,
  book: ShareBook,
): { sharding: Sharding; peers: PeerReports; runnables: [string, Runnable][]; late: Late } {
  let leaderSeen: string | undefined;
  const reconcile = (keys: Iterable<string>) => {
    for (const key of keys) late.policyController?.enqueue(requestFromKey(key));
  };
  const everyPolicy = () => {
    for (const p of late.caches?.policies.list() ?? []) {
      late.policyController?.enqueue({ namespace: p.metadata?.namespace ?? '', name: p.metadata?.name ?? '' });
    }
  };
  const sharding = createSharding(leases, opts, clock, log.child({ component: 'shards' }), metrics, {
    leader: () => leaderSeen,
    onAcquired: everyPolicy,
    onLost: () => late.probes?.releaseUnowned(),
    report: () => {
      const r = late.probes?.shardReport();
      return encodeReport(r?.stretch ?? 1, r?.held ?? new Map());
    },
    counts: () => book.encode(),
  });
  late.everyPolicy = everyPolicy;
  // Peers' counts move the status writer's totals, and with a share-only cache every replica's failsafe budget.
  const onCounts = (keys: string[]) => (fence.holds() || book.active()) && reconcile(keys);
  const peers = followPeers(
    sharding,
    opts.identity,
    (keys) => {
      if (fence.holds()) keys === 'all' ? everyPolicy() : reconcile(keys);
    },
    { peers: book.peers, onCounts },
  );
  const election = leaderElection(leases, opts, clock, log, metrics, fence, (id) => {
    leaderSeen = id;
  });
  const writer = statusLeader(election, clock, opts.retryPeriodMs, everyPolicy);
  return {
    sharding,
    peers,
    runnables: [
      ['shards', sharding.runnable],
      ['status-leader', writer],
    ],
    late,
  };
}

/** Runs the manager with signal and last-resort error handlers installed, then cleans up. */
async function runUntilStopped(
  manager: Manager,
  metrics: Metrics,
  log: Logger,
  clock: Clock,
  cleanUp: () => Promise<void>,
): Promise<void> {
  const uninstall = manager.handleSignals();
  // An error no code caught is logged, counted and survived (src/runtime/unexpected.ts).
  const uninstallNet = handleUnexpectedErrors({
    log,
    count: (kind) => metrics.unexpectedErrorsTotal.inc({ kind }),
    now: () => clock.now(),
  });
  try {
    await manager.start();
  } finally {
    uninstallNet();
    uninstall();
    await cleanUp();
  }
}

/**
 * From when a pod's slot may have gone unprobed (src/safety/sharding.ts, handoverSince): sharded,
 * since its bucket was taken over; unsharded with leader election, since this replica began to
 * lead, as every pod was then taken over from the previous leader.
 */
function takeovers(opts: OperatorOptions, clock: Clock, sharding: Sharding | undefined) {
  const leader = handoverTimes(clock, opts.leaseDurationMs, opts.retryPeriodMs);
  return {
    missedSince: sharding?.missedSince ?? (opts.leaderElect ? () => leader.since(0) : undefined),
    leading: () => leader.acquired(0),
  };
}

/** Runs both controllers (after `before`, if given); probing stops as soon as stopping begins. */
function controllersRunnable(
  probes: ProbeManager,
  policyController: Controller,
  podController: Controller,
  before?: (signal: AbortSignal) => Promise<void>,
  leading?: () => void,
): Runnable {
  return {
    start: async (signal) => {
      await before?.(signal);
      if (signal.aborted) return;
      leading?.();
      // No result could be written any more, and a saturated scheduler would only take CPU from the drain.
      signal.addEventListener('abort', () => probes.stop(), { once: true });
      await Promise.all([policyController.start(signal), podController.start(signal)]);
      probes.stop();
    },
  };
}

/** The probe manager and the two controllers (policy, pod), with their reconcilers and metrics. */
function createControllers(parts: {
  kc: KubeConfig;
  opts: OperatorOptions;
  clock: Clock;
  log: Logger;
  metrics: Metrics;
  guards: WriteGuards;
  caches: Caches;
  batch: StatusBatch;
  peers: PeerReports | undefined;
  shares: ShareBook | undefined;
  /** From when a handover may have left a pod's slot unprobed (src/safety/sharding.ts, handoverSince). */
  missedSince: ((podUid: string) => number | undefined) | undefined;
}): { probes: ProbeManager; policyController: Controller; podController: Controller } {
  const { kc, opts, clock, log, metrics, guards, caches, batch, peers, shares } = parts;
  const core = kc.makeApiClient(CoreV1Api);
  const writeLimiter = new FairTokenBucket({ qps: opts.apiQps, burst: opts.apiBurst, clock });
  const events = new EventRecorder({
    core,
    allowed: guards.eventAllowed,
    now: () => clock.now(),
    instance: opts.identity,
    onError: (err) => {
      metrics.apiErrorsTotal.inc({ verb: 'create', resource: 'events', code: String(statusCode(err) ?? 'transport') });
      log.warn({ err: String(err) }, 'event not recorded');
    },
  });
  const hooks = metrics.controllerHooks();

  // Controllers exist from the start (so informer handlers can enqueue), but only run once this
  // process leads; keys queued meanwhile are harmless and deduplicated.
  let podController: Controller | undefined;
  const probes = createProbeManager({
    kc,
    clock,
    log: log.child({ component: 'probes' }),
    metrics,
    concurrency: opts.probeConcurrency,
    enableExec: opts.enableExec,
    caches,
    onDesiredChange: (pod) => podController?.enqueue(pod),
    onStatusChange: (policy) => guards.writesStatus() && policyController.enqueue(policy),
    owns: guards.shards?.owns,
    missedSince: parts.missedSince,
    writes: () => ({ queued: podController?.queueDepth() ?? 0, throttled: writeLimiter.waiting() > 0 }),
    maxStretch: opts.maxPeriodStretch,
    events,
  });
  const policyController = new Controller({
    name: 'probepolicy',
    workers: opts.workers,
    clock,
    logger: log,
    hooks,
    metricsProvider: metrics.workqueueMetrics,
    reconcile: policyReconciler({
      caches,
      probes,
      core,
      events,
      writeLimiter,
      now: () => clock.now(),
      enableExec: opts.enableExec,
      allowSecretCa: opts.allowSecretCa,
      metrics,
      kc,
      fence: guards.statusFence,
      statusWriter: guards.shards ? guards.writesStatus : undefined,
      peers,
      shares,
      allowedConditionPrefixes: opts.allowedConditionPrefixes,
      releaseAfterMs: opts.releaseOrphanedGatesAfterMs,
      onPass: (namespace, ms) => batch.record(namespace, ms),
    }),
  });
  podController = new Controller({
    name: 'pod',
    workers: opts.podWorkers,
    clock,
    logger: log,
    hooks,
    metricsProvider: metrics.workqueueMetrics,
    reconcile: podReconciler({
      caches,
      probes,
      kc,
      events,
      writeLimiter,
      metrics,
      fenceFor: guards.podFence,
      owns: guards.shards?.owns,
      now: () => clock.now(),
      allowedConditionPrefixes: opts.allowedConditionPrefixes,
      releaseAfterMs: opts.releaseOrphanedGatesAfterMs,
    }),
  });
  metrics.registerFailsafe(() => probes.failsafeStats());
  metrics.registerOverload(() => probes.overloadStats());
  metrics.registerWorkqueue('probepolicy', () => policyController.queueDepth());
  metrics.registerWorkqueue('pod', () => podController?.queueDepth() ?? 0);
  return { probes, policyController, podController };
}

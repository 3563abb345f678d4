// The operator assembled: informers → workqueues → policy and pod reconcilers → probe manager,
// under a Manager, optionally behind leader election. main.ts only parses flags and calls this.
import { CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { GROUP, GROUP_VERSION, KIND, PLURAL, type ProbePolicy } from '../api/types.ts';
import type { OperatorOptions } from '../cli/options.ts';
import { statusCode } from '../kube/errors.ts';
import { EventRecorder } from '../kube/events.ts';
import { LeaderElector, restLeaseClient } from '../kube/lease.ts';
import { listAll } from '../kube/list.ts';
import { startHealthServer } from '../observability/health.ts';
import { createMetrics, type Metrics } from '../observability/metrics.ts';
import { type Clock, realClock } from '../runtime/clock.ts';
import { Controller } from '../runtime/controller.ts';
import { FairTokenBucket } from '../runtime/fair-limiter.ts';
import { clientNodeInformerFactory, ResilientInformer } from '../runtime/informer.ts';
import { Manager, type Runnable } from '../runtime/manager.ts';
import { normalizerFor } from '../runtime/normalize.ts';
import { Fence } from '../safety/fencing.ts';
import { podReconciler } from './pod.ts';
import { type Caches, policyReconciler } from './policy.ts';
import { createProbeManager } from './probe-runner.ts';
import { projectPod } from './projection.ts';
import { podChange } from './targets.ts';

/** How long a policy's ready counts may lag behind its pods' conditions. */
export const POLICY_STATUS_BATCH_MS = 1_000;

const normalizePod = normalizerFor<V1Pod>({ apiVersion: 'v1', kind: 'Pod' });

export interface Operator {
  manager: Manager;
  metrics: Metrics;
  /** Resolves when the operator has stopped (signal, leadership lost, or a fatal error). */
  run(): Promise<void>;
  stop(): Promise<void>;
}

/** Builds every part of the operator from its options; nothing runs until run(). */
export async function createOperator(
  kc: KubeConfig,
  opts: OperatorOptions,
  log: Logger,
  clock: Clock = realClock,
): Promise<Operator> {
  const metrics = createMetrics();
  const fence = opts.leaderElect ? leaseFence(opts, clock) : Fence.unconditional();
  const manager = new Manager({
    logger: log,
    clock,
    gracePeriodMs: opts.shutdownGraceMs,
    leaderElection: opts.leaderElect ? leaderElection(kc, opts, clock, log, metrics, fence) : undefined,
  });
  const core = kc.makeApiClient(CoreV1Api);
  const namespaces = opts.namespaces.length > 0 ? opts.namespaces : undefined;
  const podsPath = (ns: string | undefined) => (ns ? `/api/v1/namespaces/${ns}/pods` : '/api/v1/pods');
  const policiesPath = (ns: string | undefined) =>
    ns ? `/apis/${GROUP}/${GROUP_VERSION}/namespaces/${ns}/${PLURAL}` : `/apis/${GROUP}/${GROUP_VERSION}/${PLURAL}`;

  const pods = new ResilientInformer<V1Pod>({
    name: 'pods',
    factory: clientNodeInformerFactory<V1Pod>(kc, {
      path: podsPath,
      list: (ns) => listAll<V1Pod>(kc, podsPath(ns), { transform: projectPod }),
    }),
    normalize: (pod) => normalizePod(projectPod(pod)),
    namespaces,
    clock,
    logger: log,
    resyncMs: opts.resyncMs,
    onRestart: metrics.informerRestartHook('pods'),
  });
  const policies = new ResilientInformer<ProbePolicy & { metadata: object }>({
    name: 'probepolicies',
    factory: clientNodeInformerFactory<ProbePolicy & { metadata: object }>(kc, {
      path: policiesPath,
      list: (ns) => listAll<ProbePolicy & { metadata: object }>(kc, policiesPath(ns)),
    }),
    normalize: normalizerFor<ProbePolicy & { metadata: object }>({
      apiVersion: `${GROUP}/${GROUP_VERSION}`,
      kind: KIND,
    }),
    namespaces,
    clock,
    logger: log,
    resyncMs: opts.resyncMs,
    onRestart: metrics.informerRestartHook('probepolicies'),
  });
  manager.addCache(pods, 'pods');
  manager.addCache(policies, 'probepolicies');
  const caches: Caches = { pods, policies };

  const writeLimiter = new FairTokenBucket({ qps: opts.apiQps, burst: opts.apiBurst, clock });
  const events = new EventRecorder({
    core,
    allowed: () => fence.holds(),
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
    onFailsafeChange: (policy) => policyController.enqueue(policy),
    events,
  });
  const policyController = new Controller({
    name: 'probepolicy',
    workers: opts.workers,
    clock,
    logger: log,
    hooks,
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
      fence,
      allowedConditionPrefixes: opts.allowedConditionPrefixes,
    }),
  });
  podController = new Controller({
    name: 'pod',
    workers: opts.workers,
    clock,
    logger: log,
    hooks,
    reconcile: podReconciler({ caches, probes, kc, events, writeLimiter, metrics, fence, now: () => clock.now() }),
  });
  metrics.registerFailsafe(() => probes.failsafeStats());
  metrics.registerWorkqueue('probepolicy', () => policyController.queueDepth());
  metrics.registerWorkqueue('pod', () => podController?.queueDepth() ?? 0);

  // Reconcile keys, not events: every event only says which keys to look at again.
  const policiesOf = (ns: string | undefined, delayMs = 0) => {
    for (const p of policies.list(ns ?? '')) {
      policyController.enqueueAfter({ namespace: ns ?? '', name: p.metadata?.name ?? '' }, delayMs);
    }
  };
  const onPod = (pod: V1Pod, old?: V1Pod) => {
    const ns = pod.metadata?.namespace ?? '';
    podController?.enqueue({ namespace: ns, name: pod.metadata?.name ?? '' });
    // A policy reconcile reads every pod of the namespace: run it at once only when targets may
    // change; a condition change only moves the ready counts, which wait up to a batch period
    // (as the EndpointSlice controller batches pod updates), or 10,000 pods flipping one by one
    // would mean 10,000 full passes.
    const change = old === undefined ? 'targets' : podChange(old, pod);
    if (change === 'targets') policiesOf(ns);
    else if (change === 'status') policiesOf(ns, POLICY_STATUS_BATCH_MS);
  };
  pods.on({ add: (pod) => onPod(pod), update: (pod, old) => onPod(pod, old), delete: (pod) => onPod(pod) });
  const onPolicy = (p: ProbePolicy) => {
    const ns = p.metadata?.namespace ?? '';
    // Conflicts depend on every policy of the namespace, so look at all of them again.
    policyController.enqueue({ namespace: ns, name: p.metadata?.name ?? '' });
    policiesOf(ns);
  };
  policies.on({
    add: onPolicy,
    // Like controller-runtime's GenerationChangedPredicate: an update that leaves the spec's
    // generation (and deletion) alone is a status write, most often our own; reconciling on it
    // would turn every status write into another full pass, and another write.
    update: (p, old) => {
      const same =
        p.metadata?.generation === old.metadata?.generation &&
        Boolean(p.metadata?.deletionTimestamp) === Boolean(old.metadata?.deletionTimestamp);
      if (!same) onPolicy(p);
    },
    delete: onPolicy,
  });

  const controllers: Runnable = {
    start: async (signal) => {
      await Promise.all([policyController.start(signal), podController!.start(signal)]);
      probes.stop();
    },
  };

  manager.add(controllers, 'controllers', { needLeaderElection: true });
  if (!opts.leaderElect) metrics.leader.set(1);

  const health = await startHealthServer({
    host: opts.healthHost,
    port: opts.healthPort,
    ready: () => manager.ready(),
    registry: metrics.registry,
    logger: log,
  });
  log.info({ url: health.url }, 'health server listening');

  return {
    manager,
    metrics,
    run: async () => {
      const uninstall = manager.handleSignals();
      try {
        await manager.start();
      } finally {
        uninstall();
        probes.stop();
        await health.close();
      }
    },
    stop: () => manager.stop(),
  };
}

/** The fence every write goes through when leader election is on (src/safety/fencing.ts). */
function leaseFence(opts: OperatorOptions, clock: Clock): Fence {
  // A write must be able to finish before the deadline: a quarter of the renew deadline, at most 1 s.
  return new Fence({
    clock,
    renewDeadlineMs: opts.renewDeadlineMs,
    marginMs: Math.min(1_000, opts.renewDeadlineMs / 4),
  });
}

/** The Lease-based election the Manager runs leader-only Runnables under. */
function leaderElection(
  kc: KubeConfig,
  opts: OperatorOptions,
  clock: Clock,
  log: Logger,
  metrics: Metrics,
  fence: Fence,
) {
  const elector = new LeaderElector({
    client: restLeaseClient(kc, opts.leaderElectionNamespace, opts.leaderElectionId),
    namespace: opts.leaderElectionNamespace,
    name: opts.leaderElectionId,
    identity: opts.identity,
    leaseDurationMs: opts.leaseDurationMs,
    renewDeadlineMs: opts.renewDeadlineMs,
    retryPeriodMs: opts.retryPeriodMs,
    clock,
    fence,
    onNewLeader: (id) => log.info({ leader: id }, 'leader observed'),
    log: (msg, err) => log.warn({ err: String(err) }, msg),
  });
  return {
    run: (signal: AbortSignal, hooks: { onStartedLeading(): void; onStoppedLeading(): void }) =>
      elector.run(signal, {
        onStartedLeading: () => {
          log.info({ identity: opts.identity }, 'became leader; starting controllers');
          metrics.leader.set(1);
          hooks.onStartedLeading();
        },
        onStoppedLeading: () => {
          metrics.leader.set(0);
          log.warn({ identity: opts.identity }, 'stopped leading');
          hooks.onStoppedLeading();
        },
      }),
  };
}

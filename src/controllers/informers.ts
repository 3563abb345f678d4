// The operator's two caches: pods (projected to what readygate reads) and ProbePolicies, each a
// ResilientInformer over client-node's list/watch, one per namespace or cluster-wide.
import type { KubeConfig, V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { GROUP, GROUP_VERSION, KIND, PLURAL, type ProbePolicy } from '../api/types.ts';
import type { OperatorOptions } from '../cli/options.ts';
import { listAll } from '../kube/list.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Clock } from '../runtime/clock.ts';
import { clientNodeInformerFactory, ResilientInformer } from '../runtime/informer.ts';
import { normalizerFor } from '../runtime/normalize.ts';
import { bucketPodSource } from './pod-cache.ts';
import { projectPod } from './projection.ts';

const normalizePod = normalizerFor<V1Pod>({ apiVersion: 'v1', kind: 'Pod' });

export type PolicyObject = ProbePolicy & { metadata: object };

/** Builds the pod and ProbePolicy informers; they run once the Manager starts them. */
export function createInformers(
  kc: KubeConfig,
  opts: Pick<OperatorOptions, 'namespaces' | 'resyncMs'>,
  clock: Clock,
  log: Logger,
  metrics: Metrics,
): { pods: ResilientInformer<V1Pod>; policies: ResilientInformer<PolicyObject> } {
  const namespaces = opts.namespaces.length > 0 ? opts.namespaces : undefined;
  const pods = podInformer(kc, opts, clock, log, metrics);
  const policiesPath = (ns: string | undefined) =>
    ns ? `/apis/${GROUP}/${GROUP_VERSION}/namespaces/${ns}/${PLURAL}` : `/apis/${GROUP}/${GROUP_VERSION}/${PLURAL}`;

  const policies = new ResilientInformer<PolicyObject>({
    name: 'probepolicies',
    factory: clientNodeInformerFactory<PolicyObject>(kc, {
      path: policiesPath,
      list: (ns, signal) => listAll<PolicyObject>(kc, policiesPath(ns), { signal }),
    }),
    normalize: normalizerFor<PolicyObject>({
      apiVersion: `${GROUP}/${GROUP_VERSION}`,
      kind: KIND,
    }),
    namespaces,
    clock,
    logger: log,
    resyncMs: opts.resyncMs,
    onRestart: metrics.informerRestartHook('probepolicies'),
  });
  return { pods, policies };
}

/**
 * A pod informer (projected by projectPod): over every pod, or with `shardSelector` over one
 * bucket's pods only (src/controllers/pod-cache.ts).
 */
export function podInformer(
  kc: KubeConfig,
  opts: Pick<OperatorOptions, 'namespaces' | 'resyncMs'>,
  clock: Clock,
  log: Logger,
  metrics: Metrics,
  shardSelector?: string,
): ResilientInformer<V1Pod> {
  const podsPath = (ns: string | undefined) => (ns ? `/api/v1/namespaces/${ns}/pods` : '/api/v1/pods');
  return new ResilientInformer<V1Pod>({
    name: 'pods',
    factory:
      shardSelector === undefined
        ? clientNodeInformerFactory<V1Pod>(kc, {
            path: podsPath,
            list: (ns, signal) => listAll<V1Pod>(kc, podsPath(ns), { transform: projectPod, signal }),
          })
        : bucketPodSource(kc, shardSelector, projectPod),
    normalize: (pod) => normalizePod(projectPod(pod)),
    namespaces: opts.namespaces.length > 0 ? opts.namespaces : undefined,
    clock,
    logger: shardSelector === undefined ? log : log.child({ shardSelector }),
    resyncMs: opts.resyncMs,
    onRestart: metrics.informerRestartHook('pods'),
  });
}

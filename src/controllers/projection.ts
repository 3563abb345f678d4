// What the operator keeps of a pod: the fields it reads, nothing else (what client-go's
// SetTransform and controller-runtime's cache transforms are for). Pods in the cache are read by
//   targets.ts       metadata namespace, labels, deletionTimestamp, uid; spec.readinessGates;
//                    status.phase, status.podIP; the controller ownerReference (podChange)
//   ungated.ts       metadata name, labels (pod-template-hash); the controller ownerReference
//   probe-runner.ts  metadata uid, name; status conditions of its gate type (the debouncer seed)
//   probes/*         spec.containers[].name and .ports (named ports, the exec container)
//   pod.ts           the readygate.dev/injected-gates annotation (gates gate injection added)
//   pod.ts, policy.ts  metadata name, uid, resourceVersion; status conditions of gate types
// and nothing else, so a field added to that list must be added here too (the reconcilers'
// tests run on projected pods). A real pod's spec and status (volumes, env, resources, container
// statuses, managedFields) are most of its size and ~10 KB or more each.
import type { V1OwnerReference, V1Pod } from '@kubernetes/client-node';
import { INJECTED_GATES_ANNOTATION } from '../api/types.ts';
import { controllerOf } from './targets.ts';

/** The pool's bound; past it the pool starts over, which costs sharing only, never a wrong reference. */
export const CONTROLLER_POOL_MAX = 10_000;
/**
 * Controller references by UID, one frozen array per controller shared by all of its pods: a
 * ReplicaSet's 5,000 pods hold one reference, not a copy each (bench/projection-heap.ts).
 */
const controllers = new Map<string, readonly V1OwnerReference[]>();

function sharedController(ref: V1OwnerReference): V1OwnerReference[] {
  const pooled = controllers.get(ref.uid);
  const p = pooled?.[0];
  if (pooled && p?.name === ref.name && p.kind === ref.kind && p.apiVersion === ref.apiVersion) {
    return pooled as V1OwnerReference[];
  }
  if (controllers.size >= CONTROLLER_POOL_MAX) controllers.clear();
  const { apiVersion, kind, name, uid } = ref;
  const refs = Object.freeze([Object.freeze({ apiVersion, kind, name, uid, controller: true })]);
  controllers.set(uid, refs);
  return refs as V1OwnerReference[];
}

/** Distinct injected-gates annotations, shared: a Deployment's pods all carry the same one. */
const injectedPool = new Map<string, Readonly<Record<string, string>>>();

function sharedInjected(value: string): Record<string, string> {
  let pooled = injectedPool.get(value);
  if (!pooled) {
    if (injectedPool.size >= CONTROLLER_POOL_MAX) injectedPool.clear();
    pooled = Object.freeze({ [INJECTED_GATES_ANNOTATION]: value });
    injectedPool.set(value, pooled);
  }
  return pooled as Record<string, string>;
}

/**
 * Replaces the pod's metadata, spec and status, in place, by the parts the operator reads. In
 * place because client-node's informer cache holds the same object: a copy would leave the full
 * pod alive there.
 */
export function projectPod(pod: V1Pod): V1Pod {
  const m = pod.metadata;
  if (m) {
    const controller = controllerOf(pod);
    const injected = m.annotations?.[INJECTED_GATES_ANNOTATION];
    pod.metadata = {
      name: m.name,
      namespace: m.namespace,
      uid: m.uid,
      resourceVersion: m.resourceVersion,
      creationTimestamp: m.creationTimestamp,
      ...(m.deletionTimestamp ? { deletionTimestamp: m.deletionTimestamp } : {}),
      ...(m.labels ? { labels: m.labels } : {}),
      ...(injected ? { annotations: sharedInjected(injected) } : {}),
      // Only the controller; other owners are never read.
      ...(controller ? { ownerReferences: sharedController(controller) } : {}),
    };
  }
  const spec = pod.spec;
  const gates = spec?.readinessGates;
  if (spec) {
    pod.spec = {
      containers: spec.containers.map((c) => ({
        name: c.name,
        ...(c.ports
          ? { ports: c.ports.map((p) => ({ name: p.name, containerPort: p.containerPort, protocol: p.protocol })) }
          : {}),
      })),
      ...(gates ? { readinessGates: gates } : {}),
    };
  }
  const status = pod.status;
  if (status) {
    // Only gate conditions: the operator never reads the kubelet's own (Ready, PodScheduled…).
    const conditions = gates ? status.conditions?.filter((c) => gates.some((g) => g.conditionType === c.type)) : [];
    pod.status = {
      phase: status.phase,
      ...(status.podIP ? { podIP: status.podIP } : {}),
      ...(conditions && conditions.length > 0 ? { conditions } : {}),
    };
  }
  return pod;
}

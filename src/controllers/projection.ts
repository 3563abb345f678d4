// What the operator keeps of a pod: the fields it reads, nothing else (what client-go's
// SetTransform and controller-runtime's cache transforms are for). Pods in the cache are read by
//   targets.ts       metadata namespace, labels, deletionTimestamp, uid; spec.readinessGates;
//                    status.phase, status.podIP
//   probe-runner.ts  metadata uid, name; status conditions of its gate type (the debouncer seed)
//   probes/*         spec.containers[].name and .ports (named ports, the exec container)
//   pod.ts, policy.ts  metadata name, uid, resourceVersion; status conditions of gate types
// and nothing else, so a field added to that list must be added here too (the reconcilers'
// tests run on projected pods). A real pod's spec and status (volumes, env, resources, container
// statuses, managedFields) are most of its size and ~10 KB or more each.
import type { V1Pod } from '@kubernetes/client-node';

/**
 * Replaces the pod's metadata, spec and status, in place, by the parts the operator reads. In
 * place because client-node's informer cache holds the same object: a copy would leave the full
 * pod alive there.
 */
export function projectPod(pod: V1Pod): V1Pod {
  const m = pod.metadata;
  if (m) {
    pod.metadata = {
      name: m.name,
      namespace: m.namespace,
      uid: m.uid,
      resourceVersion: m.resourceVersion,
      creationTimestamp: m.creationTimestamp,
      ...(m.deletionTimestamp ? { deletionTimestamp: m.deletionTimestamp } : {}),
      ...(m.labels ? { labels: m.labels } : {}),
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

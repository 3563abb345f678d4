// The benchmark's pod driver, a light stand-in for the kubelet fixture at 10,000 pods: it creates
// each pod already bound (spec.nodeName set) and then reports it Running with ready containers
// and a loopback podIP, by the same strategic merge patch of pods/status the fixture sends
// (test/support/kubelet-fixture.ts desiredStatus). No app server per pod: the pods' IPs point at
// the shared listeners of bench/operator/listeners.ts. Bounded concurrency, optional pacing.
import type { V1Pod } from '@kubernetes/client-node';
import { desiredStatus } from '../../test/support/kubelet-fixture.ts';
import type { Api } from './api.ts';

export const BENCH_NODE = 'bench-node';
export const APP_LABEL = 'readygate-bench';

export interface PodPlan {
  name: string;
  ip: string;
}

export interface PodDriverOptions {
  namespace: string;
  conditionType: string;
  port: number;
  /** Requests of pods in flight (create + status), default 32. */
  concurrency?: number;
  /** Pods per second to start at most (plan i is not started before start + i / rate). */
  ratePerSecond?: number;
}

export interface StartedPod {
  name: string;
  uid: string;
  ip: string;
  /** When the status patch that gave the pod its IP returned (performance.now()). */
  ipAt: number;
}

/** The pod object: gated on conditionType, selected by APP_LABEL, one container port. */
export function podManifest(plan: PodPlan, o: PodDriverOptions): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: plan.name, labels: { app: APP_LABEL } },
    spec: {
      nodeName: BENCH_NODE,
      readinessGates: [{ conditionType: o.conditionType }],
      containers: [{ name: 'app', image: 'bench/app:1', ports: [{ name: 'http', containerPort: o.port }] }],
      terminationGracePeriodSeconds: 0,
    },
  };
}

/** Creates the pods and makes each Running with its IP; resolves with what was started, in plan order. */
export async function startPods(api: Api, plans: PodPlan[], o: PodDriverOptions): Promise<StartedPod[]> {
  const out: StartedPod[] = new Array(plans.length);
  const concurrency = o.concurrency ?? 32;
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= plans.length) return;
      const plan = plans[i]!;
      if (o.ratePerSecond) {
        const due = started + (i * 1000) / o.ratePerSecond;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      const pod = await api.request<V1Pod>('POST', `/api/v1/namespaces/${o.namespace}/pods`, podManifest(plan, o));
      const status = desiredStatus(pod, plan.ip);
      await api.request(
        'PATCH',
        `/api/v1/namespaces/${o.namespace}/pods/${plan.name}/status`,
        { metadata: { uid: pod.metadata?.uid }, status },
        'application/strategic-merge-patch+json',
      );
      out[i] = { name: plan.name, uid: pod.metadata?.uid ?? '', ip: plan.ip, ipAt: performance.now() };
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, plans.length) }, worker));
  return out;
}

import { Gauge, type Registry } from 'prom-client';
import type { PolicyPods } from './metrics.ts';

// The pod counts of each ProbePolicy's status as gauges {namespace, policy}: what `kubectl get
// probepolicies` shows, for dashboards and alerts. Set by the replica that writes policy status,
// removed when the policy goes, so series of deleted policies do not linger.

type Labels = 'namespace' | 'policy';

/** The readygate_policy_*_pods gauges and the functions that set and remove one policy's series. */
export function policyGauges(registers: Registry[]): {
  set(namespace: string, policy: string, pods: PolicyPods): void;
  forget(namespace: string, policy: string): void;
} {
  const gauge = (what: string, help: string) =>
    new Gauge<Labels>({ name: `readygate_policy_${what}_pods`, help, labelNames: ['namespace', 'policy'], registers });
  const matched = gauge('matched', 'Pods a ProbePolicy selects that list its readiness gate (status.matchedPods).');
  const ready = gauge('ready', 'Matched pods whose gate condition is True (status.readyPods).');
  const failing = gauge('failing', 'Matched pods whose gate condition is not True (matched minus ready).');
  const ungated = gauge(
    'ungated',
    'Selected pods that do not list the gate (status.ungatedPods); absent when spec.injection is Disabled.',
  );
  const all = [matched, ready, failing, ungated];
  return {
    set(namespace, policy, pods) {
      const labels = { namespace, policy };
      matched.set(labels, pods.matched);
      ready.set(labels, pods.ready);
      failing.set(labels, pods.failing);
      if (pods.ungated === undefined) ungated.remove(labels);
      else ungated.set(labels, pods.ungated);
    },
    forget(namespace, policy) {
      for (const g of all) g.remove({ namespace, policy });
    },
  };
}

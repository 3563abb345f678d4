// The one place where the benchmark meets readygate's probers. Everything else in bench/engine
// only sees `createProber(kind, timeoutMs, path)`.
//
// It goes through runProbe, the front door the operator itself calls, with what a ProbePolicy
// and its pods look like in a cluster: one probe spec shared by every target, whose named port
// each pod (one per farm target, the target's address as pod IP) resolves in its own container
// ports. The kubelet harness does the per-probe work of the kubelet in the same way
// (tools/bench/kubelet-prober).
import { type PodLike, runProbe } from '../../src/probes/probe.ts';
import type { ProbeSpec } from '../../src/probes/types.ts';
import type { ProbeFn } from './loop.ts';
import type { ProbeKind, Target } from './types.ts';

/** Which implementation `createProber` returns, for the results file. */
export const implementation = 'src/probes runProbe (TCP: probeTcp; HTTP: createHttpProber on the lean exchange)';

const PORT_NAME = 'probe';

function podFor(t: Target, i: number): PodLike {
  return {
    metadata: { name: `target-${i}`, namespace: 'bench' },
    spec: { containers: [{ name: 'app', ports: [{ name: PORT_NAME, containerPort: t.port, protocol: 'TCP' }] }] },
    status: { podIP: t.host },
  };
}

/** Returns readygate's prober for `kind`, as a function the benchmark loop can call. */
export function createProber(kind: ProbeKind, timeoutMs: number, path = '/healthz'): ProbeFn {
  const timeoutSeconds = timeoutMs / 1000;
  const probe: ProbeSpec =
    kind === 'tcp'
      ? { tcpSocket: { port: PORT_NAME }, timeoutSeconds }
      : { httpGet: { port: PORT_NAME, path, scheme: 'HTTP' }, timeoutSeconds };
  const pods: PodLike[] = [];
  return async (i, t) => {
    let pod = pods[i];
    if (!pod) {
      pod = podFor(t, i);
      pods[i] = pod;
    }
    const r = await runProbe({ probe, pod });
    return r.outcome === 'success';
  };
}

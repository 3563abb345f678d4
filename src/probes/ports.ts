// Resolves a probe's int-or-string port against the pod's container ports.
import type { IntOrString, PodContainer } from './types.ts';

export type PortResolution = { ok: true; port: number } | { ok: false; message: string };

/**
 * Resolves `port` to a number: a number is used as is; a name is looked up in every
 * container's ports (first TCP match wins); a name that is all digits is taken as a number.
 */
export function resolvePort(port: IntOrString, containers: readonly PodContainer[]): PortResolution {
  // Mirrors k8s.io/kubernetes pkg/probe ResolveContainerPort, widened to the whole pod
  // because our probe belongs to the pod, not to one container.
  let value: number;
  if (typeof port === 'number') {
    value = port;
  } else {
    const found = findNamedPort(port, containers);
    if (found.ok) return found;
    // The kubelet's "last ditch effort": an int stored as a string.
    if (!/^\d+$/.test(port)) return found;
    value = Number(port);
  }
  if (Number.isInteger(value) && value > 0 && value < 65536) return { ok: true, port: value };
  return { ok: false, message: `invalid port number: ${value}` };
}

function findNamedPort(name: string, containers: readonly PodContainer[]): PortResolution {
  let nonTcp: string | undefined;
  for (const container of containers) {
    for (const p of container.ports ?? []) {
      if (p.name !== name) continue;
      const protocol = p.protocol ?? 'TCP';
      // Every handler (TCP, HTTP, gRPC) speaks TCP; a UDP/SCTP port of that name cannot be probed.
      if (protocol === 'TCP') return { ok: true, port: p.containerPort };
      nonTcp = protocol;
    }
  }
  if (nonTcp) return { ok: false, message: `named port "${name}" is ${nonTcp}, not TCP` };
  return { ok: false, message: `named port "${name}" not found in any container of the pod` };
}

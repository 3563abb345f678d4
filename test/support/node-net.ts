// The host side of the real node's network: a bridge holding the pod network's gateway address
// and the node's address (the kubelet refuses a loopback node IP; this kernel has no dummy
// interfaces: "ip link add … type dummy" answers "Unknown device type"), and
// the iptables and sysctl state before the node started, so teardown can put them back.
// Everything here stays on this machine: 10.245.N.1/32 and 10.244.N.0/24 are local addresses.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';

export interface NodeNetwork {
  /** Interface name, at most 15 characters, unique per run. */
  bridge: string;
  nodeIP: string;
  podSubnet: string;
  gateway: string;
}

/** A free pair of address blocks and fresh interface names (pure but for the route table check). */
export function pickNetwork(routes: string = ipRoutes()): NodeNetwork {
  const suffix = randomBytes(3).toString('hex');
  for (let attempt = 0; attempt < 50; attempt++) {
    const n = 1 + Math.floor(Math.random() * 250);
    if (routes.includes(`10.244.${n}.`) || routes.includes(`10.245.${n}.`)) continue;
    return {
      bridge: `rgb${suffix}`,
      nodeIP: `10.245.${n}.1`,
      podSubnet: `10.244.${n}.0/24`,
      gateway: `10.244.${n}.1`,
    };
  }
  throw new Error('no free 10.244.N.0/24 block for the pod network after 50 attempts');
}

function ipRoutes(): string {
  return execFileSync('ip', ['route', 'show', 'table', 'all'], { encoding: 'utf8' });
}

const ip = (args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });

export function createBridge(net: NodeNetwork): void {
  ip(['link', 'add', net.bridge, 'type', 'bridge']);
  ip(['addr', 'add', `${net.gateway}/24`, 'dev', net.bridge]);
  ip(['addr', 'add', `${net.nodeIP}/32`, 'dev', net.bridge]);
  ip(['link', 'set', net.bridge, 'up']);
}

/** Deletes the interfaces that exist; returns the names it could not delete. */
export function deleteInterfaces(names: string[]): string[] {
  const left: string[] = [];
  for (const name of names) {
    if (!linkExists(name)) continue;
    try {
      ip(['link', 'del', name]);
    } catch {
      left.push(name);
    }
  }
  return left;
}

export function linkExists(name: string): boolean {
  try {
    ip(['link', 'show', name]);
    return true;
  } catch {
    return false;
  }
}

/**
 * Kernel settings the kubelet sets at start-up, with the values it sets
 * (pkg/kubelet/cm/container_manager_linux.go, setupKernelTunables). ip_forward is not among them,
 * and the bridge plugin leaves it alone here (isGateway off).
 */
export const KUBELET_SYSCTLS: Record<string, string> = {
  'vm/overcommit_memory': '1',
  'vm/panic_on_oom': '0',
  'kernel/panic': '10',
  'kernel/panic_on_oops': '1',
  'kernel/keys/root_maxkeys': '1000000',
  'kernel/keys/root_maxbytes': '25000000',
};

export function readSysctls(names: string[] = Object.keys(KUBELET_SYSCTLS)): Record<string, string> {
  return Object.fromEntries(names.map((n) => [n, readFileSync(`/proc/sys/${n}`, 'utf8').trim()]));
}

/** The sysctls the kubelet changed from their saved values (and that nobody changed since). */
export function changedByKubelet(saved: Record<string, string>): string[] {
  return Object.entries(saved)
    .filter(([name, value]) => {
      const now = readFileSync(`/proc/sys/${name}`, 'utf8').trim();
      return now !== value && now === KUBELET_SYSCTLS[name];
    })
    .map(([name]) => name);
}

/** Writes back the values the kubelet changed; returns the names it could not restore. */
export function restoreSysctls(saved: Record<string, string>): string[] {
  const left: string[] = [];
  for (const name of changedByKubelet(saved)) {
    if (!/^[a-z0-9_/]+$/.test(name)) throw new Error(`sysctl ${JSON.stringify(name)} is not a sysctl path`);
    try {
      writeFileSync(`/proc/sys/${name}`, saved[name] ?? '');
    } catch {
      left.push(name);
    }
  }
  return left;
}

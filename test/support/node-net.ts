// The host side of the real node's network: a bridge holding the pod network's gateway address
// and the node's address (the kubelet refuses a loopback node IP; this kernel has no dummy
// interfaces: "ip link add … type dummy" answers "Unknown device type"), and
// the iptables and sysctl state before the node started, so teardown can put them back.
// Everything here stays on this machine: 10.245.N.1/32 and 10.244.N.0/24 are local addresses.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

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
  dropForwarded(net.bridge);
}

/**
 * Pods route the Service CIDR to the host; kube-proxy DNATs the Services' addresses to local
 * ones, but this host forwards (ip_forward is on here, and stays as it is), so a packet to any
 * other address of the CIDR would leave the machine. This chain drops whatever a pod sends that
 * the host would route off the bridge (pod to pod stays on it). Removed with the node's iptables
 * rules (iptables-diff.ts: READYGATE-*).
 */
export function dropForwarded(bridge: string): void {
  const chain = forwardChain(bridge);
  iptables(['-N', chain]);
  iptables(['-A', chain, '-j', 'DROP']);
  iptables(['-I', 'FORWARD', '1', ...forwardHook(bridge)]);
}

/**
 * Puts the drop back in front of FORWARD: kube-proxy inserts its own jumps at the top when it
 * starts, and keeps them where they are afterwards. Called once kube-proxy has synced, before any
 * pod runs, so that no rule of anyone else sees a pod's packet first.
 */
export function dropForwardedFirst(bridge: string): void {
  iptables(['-D', 'FORWARD', ...forwardHook(bridge)]);
  iptables(['-I', 'FORWARD', '1', ...forwardHook(bridge)]);
}

const forwardHook = (bridge: string) => ['-i', bridge, '!', '-o', bridge, '-j', forwardChain(bridge)];

const iptables = (args: string[]) =>
  execFileSync('iptables', ['-w', '5', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });

export const forwardChain = (bridge: string) => `READYGATE-FWD-${bridge.slice(3)}`;

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

/**
 * Kernel settings nothing of the node may change: IP forwarding (off, nothing is routed off the
 * machine), route_localnet (kube-proxy sets it only for NodePorts on localhost, which its config
 * turns off) and bridge netfilter. Read where they exist; teardown reports any that changed.
 */
export const NETWORK_SYSCTLS = [
  'net/ipv4/ip_forward',
  'net/ipv4/conf/all/route_localnet',
  'net/bridge/bridge-nf-call-iptables',
];

export function readNetworkSysctls(): Record<string, string> {
  return readSysctls(NETWORK_SYSCTLS.filter((n) => existsSync(`/proc/sys/${n}`)));
}

/** The network sysctls whose value is not what it was before the node started, as "name (was → now)". */
export function changedNetworkSysctls(saved: Record<string, string>): string[] {
  const now = readSysctls(Object.keys(saved));
  return Object.entries(saved)
    .filter(([name, value]) => now[name] !== value)
    .map(([name, value]) => `${name} (was ${value}, now ${now[name]})`);
}

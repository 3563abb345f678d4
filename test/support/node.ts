// A real Kubernetes node next to a test control plane (started with { node: true }): containerd
// with its own config, root, state and socket under the node's directory, runc, the CNI bridge
// plugin on a bridge of the harness's own, a real kubelet and kube-scheduler, and the pause and
// test app images imported without a registry (node-images.ts). Teardown on every exit path:
// stop(), and node-reaper.ts if this process dies (node-teardown.ts lists what it removes).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { issueCertificate, writeCertKubeconfig } from './certs.ts';
import { freePort, SERVICE_CIDR, waitFor } from './control-plane.ts';
import { cniConfig, containerdConfig, kubeletConfig, kubeProxyConfig, type NodeLayout } from './node-config.ts';
import { ensureNodeImages, type NodeImages } from './node-images.ts';
import {
  createBridge,
  dropForwardedFirst,
  type NodeNetwork,
  pickNetwork,
  readNetworkSysctls,
  readSysctls,
} from './node-net.ts';
import {
  iptablesSave,
  missingPaths,
  type NodeState,
  tearDownNode,
  topLevelCgroups,
  writeNodeState,
} from './node-teardown.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const NODE_NAME = 'readygate-node';

export interface ControlPlaneRef {
  dir: string;
  server: string;
  kubeconfigPath: string;
  binDir: string;
}

export interface RealNode {
  dir: string;
  nodeName: string;
  nodeIP: string;
  podSubnet: string;
  images: NodeImages;
  containerdSocket: string;
  /** Tears everything down; resolves with the leftovers (empty when clean). */
  stop(): Promise<string[]>;
}

export interface NodeOptions {
  log?: (line: string) => void;
  /** Leave the processes running after this process exits (for `npm run cluster:up -- --node`). */
  detached?: boolean;
  dir?: string;
}

/**
 * The node's directory, network and recorded state before any process starts: the bridge holds
 * the node IP, which kube-apiserver then binds (control-plane.ts bindAddress), so the node's
 * network comes before the control plane. stop() undoes it on any exit path from here on.
 */
export interface PreparedNode {
  dir: string;
  net: NodeNetwork;
  state: NodeState;
  detached: boolean;
  stop(): Promise<string[]>;
}

export function prepareNode(opts: NodeOptions = {}): PreparedNode {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'readygate-node-'));
  mkdirSync(dir, { recursive: true });
  const net = pickNetwork();
  // Recorded before anything is changed, so that any exit path from here on can undo it.
  const state: NodeState = {
    dir,
    containerdSocket: join(dir, 'containerd.sock'),
    runcRoot: join(dir, 'runc'),
    networkName: `readygate-${net.bridge.slice(3)}`,
    interfaces: [net.bridge],
    sysctls: readSysctls(),
    networkSysctls: readNetworkSysctls(),
    iptablesBefore: { v4: iptablesSave('iptables'), v6: iptablesSave('ip6tables') },
    cgroupsBefore: topLevelCgroups(),
    createdPaths: missingPaths(),
    processes: [],
  };
  writeNodeState(state);
  const detached = opts.detached ?? false;
  if (!detached) spawnReaper(dir);
  const stop = () => tearDownNode(dir);
  try {
    createBridge(net);
  } catch (err) {
    void stop();
    throw err;
  }
  return { dir, net, state, detached, stop };
}

/** Starts the node's processes on a prepared node (prepareNode), or on one it prepares itself. */
export async function startNode(
  cp: ControlPlaneRef,
  opts: NodeOptions & { prepared?: PreparedNode } = {},
): Promise<RealNode> {
  const log = opts.log ?? (() => {});
  const started = Date.now();
  const prepared = opts.prepared ?? prepareNode(opts);
  const { dir, net, state, stop } = prepared;
  try {
    const images = ensureNodeImages(log);
    const layout: NodeLayout = {
      dir,
      containerdSocket: state.containerdSocket,
      runcRoot: state.runcRoot,
      cniConfDir: join(dir, 'cni/net.d'),
      nodeName: NODE_NAME,
      nodeIP: net.nodeIP,
      kubeletPort: await freePort(),
      kubeletHealthzPort: await freePort(),
      podSubnet: net.podSubnet,
      gateway: net.gateway,
      serviceCIDR: SERVICE_CIDR,
      bridge: net.bridge,
      networkName: state.networkName,
      sandboxImage: images.pause.ref,
    };
    const launch = launcher(state, prepared.detached);
    await startContainerd(layout, launch);
    importImages(layout, images);
    log(`containerd ready, images imported (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    await startKubelet(cp, layout, launch);
    log(`kubelet ready: Node ${NODE_NAME} Ready at ${net.nodeIP} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    startScheduler(cp, layout, launch);
    await startKubeProxy(cp, layout, launch);
    dropForwardedFirst(net.bridge);
    log(`kube-proxy synced the Service rules (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    return {
      dir,
      nodeName: NODE_NAME,
      nodeIP: net.nodeIP,
      podSubnet: net.podSubnet,
      images,
      containerdSocket: layout.containerdSocket,
      stop,
    };
  } catch (err) {
    const left = await stop();
    if (left.length > 0) log(`leftovers after a failed start: ${left.join('; ')}`);
    throw err;
  }
}

function spawnReaper(dir: string): void {
  const reaper = spawn(process.execPath, [join(ROOT, 'test/support/node-reaper.ts'), String(process.pid), dir], {
    detached: true,
    stdio: 'ignore',
  });
  reaper.unref();
}

type Launch = (name: string, bin: string, args: string[]) => { child: ChildProcess; logPath: string };

/** Starts binaries with their output in <dir>/<name>.log, recording each pid in node.json at once. */
function launcher(state: NodeState, detached: boolean): Launch {
  return (name, bin, args) => {
    const logPath = join(state.dir, `${name}.log`);
    const fd = openSync(logPath, 'a');
    const child = spawn(bin, args, { stdio: ['ignore', fd, fd], detached });
    closeSync(fd);
    if (detached) child.unref();
    if (child.pid === undefined) throw new Error(`${name} did not start (${bin})`);
    state.processes.push({ name, pid: child.pid });
    writeNodeState(state);
    return { child, logPath };
  };
}

/** control-plane.ts's waitFor, for a process launched here. */
const waitUntil = (
  what: string,
  ready: () => Promise<boolean>,
  proc: { child: ChildProcess; logPath: string },
  timeoutMs: number,
): Promise<void> => waitFor(what, ready, proc.child, proc.logPath, timeoutMs);

function ctr(layout: NodeLayout, args: string[]): string {
  return execFileSync('ctr', ['--address', layout.containerdSocket, '--namespace', 'k8s.io', ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

async function startContainerd(layout: NodeLayout, launch: Launch): Promise<void> {
  mkdirSync(layout.cniConfDir, { recursive: true });
  writeFileSync(join(layout.cniConfDir, '10-readygate.conflist'), cniConfig(layout));
  const config = join(layout.dir, 'containerd.toml');
  writeFileSync(config, containerdConfig(layout));
  const proc = launch('containerd', 'containerd', ['--config', config, '--log-level', 'info']);
  await waitUntil('containerd', async () => ctr(layout, ['version']).includes('Server'), proc, 30_000);
}

function importImages(layout: NodeLayout, images: NodeImages): void {
  for (const image of [images.pause, images.app]) ctr(layout, ['images', 'import', image.tarball]);
}

async function startKubelet(cp: ControlPlaneRef, layout: NodeLayout, launch: Launch): Promise<void> {
  const certs = join(layout.dir, 'pki');
  mkdirSync(certs, { recursive: true });
  const client = issueCertificate(cp.dir, certs, {
    name: 'kubelet-client',
    commonName: `system:node:${layout.nodeName}`,
    organizations: ['system:nodes'],
    usage: 'client',
  });
  const serving = issueCertificate(cp.dir, certs, {
    name: 'kubelet-serving',
    commonName: layout.nodeName,
    usage: 'server',
    ipAddresses: [layout.nodeIP],
    dnsNames: [layout.nodeName],
  });
  const caPath = join(cp.dir, 'ca.crt');
  const kubeconfig = join(layout.dir, 'kubelet.kubeconfig');
  writeCertKubeconfig(kubeconfig, cp.server, caPath, `system:node:${layout.nodeName}`, client);
  const config = join(layout.dir, 'kubelet.json');
  writeFileSync(config, kubeletConfig(layout, { clientCA: caPath, cert: serving.cert, key: serving.key }));
  const proc = launch('kubelet', join(cp.binDir, 'kubelet'), [
    `--config=${config}`,
    `--kubeconfig=${kubeconfig}`,
    `--root-dir=${join(layout.dir, 'kubelet')}`,
    `--hostname-override=${layout.nodeName}`,
    `--node-ip=${layout.nodeIP}`,
    '--v=2',
  ]);
  const admin = new KubeConfig();
  admin.loadFromFile(cp.kubeconfigPath);
  const core = admin.makeApiClient(CoreV1Api);
  await waitUntil(
    'kubelet',
    async () => {
      const node = await core.readNode({ name: layout.nodeName });
      return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
    },
    proc,
    90_000,
  );
}

function startScheduler(cp: ControlPlaneRef, layout: NodeLayout, launch: Launch): void {
  const cert = issueCertificate(cp.dir, join(layout.dir, 'pki'), {
    name: 'scheduler',
    commonName: 'system:kube-scheduler',
    usage: 'client',
  });
  const kubeconfig = join(layout.dir, 'scheduler.kubeconfig');
  writeCertKubeconfig(kubeconfig, cp.server, join(cp.dir, 'ca.crt'), 'system:kube-scheduler', cert);
  launch('kube-scheduler', join(cp.binDir, 'kube-scheduler'), [
    `--kubeconfig=${kubeconfig}`,
    '--leader-elect=false',
    '--bind-address=127.0.0.1',
    '--secure-port=0',
    '--v=1',
  ]);
}

/**
 * kube-proxy in iptables mode, with credentials of its own (system:kube-proxy, which the
 * bootstrap policy binds to system:node-proxier): it DNATs the `kubernetes` Service's ClusterIP to
 * kube-apiserver on the node IP. Ready once its healthz reports a sync of the rules.
 */
async function startKubeProxy(cp: ControlPlaneRef, layout: NodeLayout, launch: Launch): Promise<void> {
  const cert = issueCertificate(cp.dir, join(layout.dir, 'pki'), {
    name: 'kube-proxy',
    commonName: 'system:kube-proxy',
    usage: 'client',
  });
  const kubeconfig = join(layout.dir, 'kube-proxy.kubeconfig');
  writeCertKubeconfig(kubeconfig, cp.server, join(cp.dir, 'ca.crt'), 'system:kube-proxy', cert);
  const healthzPort = await freePort();
  const config = join(layout.dir, 'kube-proxy.json');
  writeFileSync(config, kubeProxyConfig(layout, { kubeconfig, healthzPort, metricsPort: await freePort() }));
  const proc = launch('kube-proxy', join(cp.binDir, 'kube-proxy'), [`--config=${config}`, '--v=2']);
  await waitUntil(
    'kube-proxy',
    async () => {
      const res = await fetch(`http://127.0.0.1:${healthzPort}/healthz`, { signal: AbortSignal.timeout(2000) });
      const body = (await res.json()) as { lastUpdated?: string };
      return res.ok && Boolean(body.lastUpdated) && iptablesSave('iptables').includes('default/kubernetes:https');
    },
    proc,
    60_000,
  );
}

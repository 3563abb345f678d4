// Tears the real node down on every exit path (node.ts on stop, node-reaper.ts when the test
// process died) from what <dir>/node.json records, then lists what is left. In order: the
// kubelet and the scheduler, every container (runc, through containerd's runc root), containerd,
// its shims, the mounts (rootfs overlays, shm, netns bind mounts), network namespaces, CNI cache
// files, the interfaces, the iptables rules and chains added since the start, the sysctls.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { killAll } from './control-plane.ts';
import { parseIptablesSave, undoCommands } from './iptables-diff.ts';
import { changedByKubelet, changedNetworkSysctls, deleteInterfaces, linkExists, restoreSysctls } from './node-net.ts';

export interface NodeState {
  dir: string;
  containerdSocket: string;
  runcRoot: string;
  networkName: string;
  interfaces: string[];
  sysctls: Record<string, string>;
  /** node-net.ts NETWORK_SYSCTLS before the start: none may change (reported, never written). */
  networkSysctls?: Record<string, string>;
  /** iptables-save and ip6tables-save output before the node started. */
  iptablesBefore: { v4: string; v6: string };
  /**
   * Top-level cgroups before the node started: containerd puts pods under k8s.io (cgroupfs, no
   * QoS cgroups), removed at teardown if it was new. Other programs' cgroups are never touched.
   */
  cgroupsBefore: string[];
  /**
   * Paths outside the node's directory that the kubelet, containerd and CNI create whatever their
   * config says (SYSTEM_PATHS) and that did not exist before the start: removed at teardown once
   * empty of the node's files.
   */
  createdPaths: string[];
  /** Network namespaces of the pods (/run/netns/cni-…), found at teardown. */
  netns?: string[];
  /** Stopped in this order: the kubelet and the scheduler before containerd. */
  processes: { name: string; pid: number }[];
}

export const stateFile = (dir: string) => join(dir, 'node.json');

export function writeNodeState(state: NodeState): void {
  writeFileSync(stateFile(state.dir), JSON.stringify(state, null, 2));
}

export function readNodeState(dir: string): NodeState | undefined {
  try {
    return JSON.parse(readFileSync(stateFile(dir), 'utf8')) as NodeState;
  } catch {
    return undefined;
  }
}

const CNI_RESULTS = '/var/lib/cni/results';
/** The kubelet links each container's log here (a fixed path), pointing into its podLogsDir. */
const CONTAINER_LOG_LINKS = '/var/log/containers';

/**
 * Fixed paths the node writes to, parents first: the kubelet's device plugin socket (not under
 * --root-dir), its container log links, containerd's shim sockets (/run/containerd/s) and other
 * directories under /run/containerd, libcni's cache and the network namespaces containerd's CRI
 * plugin creates. Found by listing what was newer than a node's start, after its teardown.
 */
export const SYSTEM_PATHS = [
  '/var/lib/kubelet',
  '/var/lib/kubelet/device-plugins',
  '/var/lib/kubelet/device-plugins/kubelet.sock',
  CONTAINER_LOG_LINKS,
  '/run/containerd',
  '/run/containerd/s',
  // containerd's FIFO directory for process I/O, and the shim's cleanup runs runc in its default root.
  '/run/containerd/fifo',
  '/run/containerd/runc',
  '/run/containerd/runc/k8s.io',
  '/var/lib/cni',
  CNI_RESULTS,
  '/run/netns',
];

export const missingPaths = (paths: string[] = SYSTEM_PATHS) => paths.filter((p) => !existsSync(p));

/** Tears down what node.json records and removes dir; returns the leftovers (empty when clean). */
export async function tearDownNode(dir: string): Promise<string[]> {
  const state = readNodeState(dir);
  if (!state) {
    rmSync(dir, { recursive: true, force: true });
    return [];
  }
  await killAll(
    state.processes.filter((p) => p.name !== 'containerd').map((p) => p.pid),
    0,
  );
  const runcRoot = join(state.runcRoot, 'k8s.io');
  const ids = containerIds(runcRoot);
  // Recorded before anything is deleted: a second teardown (after a crash in this one) finds them.
  state.netns = [...new Set([...(state.netns ?? []), ...networkNamespaces(runcRoot, ids), ...cniSandboxes(state)])];
  writeNodeState(state);
  for (const id of ids) runc(runcRoot, ['delete', '--force', id]);
  await killAll(
    state.processes.filter((p) => p.name === 'containerd').map((p) => p.pid),
    5000,
  );
  // Once more with containerd gone, before the shims (the containers' parents) go: whatever a
  // delete raced with is still in runc's root.
  for (const id of containerIds(runcRoot)) runc(runcRoot, ['delete', '--force', id]);
  await killAll(shimPids(state.containerdSocket), 0);
  for (const id of ids) attempt(() => rmSync(shimSocket(state.containerdSocket, id), { force: true }));
  unmountUnder([dir, ...state.netns]);
  for (const path of state.netns) attempt(() => rmSync(path, { force: true }));
  for (const f of cniResults(state)) attempt(() => rmSync(join(CNI_RESULTS, f), { force: true }));
  for (const link of containerLogLinks(dir)) attempt(() => rmSync(link, { force: true }));
  removeCreatedPaths(state.createdPaths ?? []);
  deleteInterfaces(state.interfaces);
  undoIptables(state.iptablesBefore);
  restoreSysctls(state.sysctls);
  for (const cgroup of newCgroups(state.cgroupsBefore)) removeCgroup(cgroup);
  const left = nodeLeftovers(state);
  // Never rm -r through a mount: it would delete inside whatever is still mounted there.
  if (mountsUnder([dir]).length === 0) rmSync(dir, { recursive: true, force: true });
  return left;
}

/** What of the node is still there: processes, mounts, namespaces, interfaces, iptables, files. */
export function nodeLeftovers(state: NodeState): string[] {
  const netns = state.netns ?? [];
  const left: string[] = [];
  const isAlive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  for (const p of state.processes) if (isAlive(p.pid)) left.push(`process ${p.name} (pid ${p.pid})`);
  for (const pid of shimPids(state.containerdSocket)) left.push(`containerd-shim (pid ${pid})`);
  for (const id of containerIds(join(state.runcRoot, 'k8s.io'))) left.push(`container ${id}`);
  for (const dir of newCgroups(state.cgroupsBefore)) left.push(`cgroup ${dir}`);
  for (const m of mountsUnder([state.dir, ...netns])) left.push(`mount ${m}`);
  for (const path of netns) if (existsSync(path)) left.push(`network namespace ${path}`);
  for (const f of cniResults(state)) left.push(`CNI cache ${join(CNI_RESULTS, f)}`);
  for (const link of containerLogLinks(state.dir)) left.push(`container log link ${link}`);
  for (const path of state.createdPaths ?? []) if (existsSync(path)) left.push(`${path} (created by the node)`);
  for (const name of state.interfaces) if (linkExists(name)) left.push(`interface ${name}`);
  for (const cmd of iptablesUndo(state.iptablesBefore)) left.push(`${cmd.tool} ${cmd.args.join(' ')} (not undone)`);
  for (const name of changedByKubelet(state.sysctls)) left.push(`sysctl ${name} (was ${state.sysctls[name]})`);
  for (const change of changedNetworkSysctls(state.networkSysctls ?? {})) left.push(`sysctl ${change}`);
  return left;
}

const CGROUP_ROOT = '/sys/fs/cgroup';

/** Top-level cgroup directories of every v1 hierarchy (and the v2 one), as controller/name. */
export function topLevelCgroups(): string[] {
  const dirs: string[] = [];
  for (const controller of readdirSync(CGROUP_ROOT)) {
    try {
      for (const e of readdirSync(join(CGROUP_ROOT, controller), { withFileTypes: true })) {
        if (e.isDirectory()) dirs.push(`${controller}/${e.name}`);
      }
    } catch {}
  }
  return dirs;
}

const NODE_CGROUP = 'k8s.io';

function newCgroups(before: string[]): string[] {
  const old = new Set(before);
  return topLevelCgroups().filter((d) => !old.has(d) && d.endsWith(`/${NODE_CGROUP}`));
}

/** rmdir, children first: the kernel refuses a cgroup that still has processes, so nothing running is hit. */
function removeCgroup(rel: string): void {
  const walk = (path: string, depth: number): void => {
    if (depth > 8) return;
    try {
      for (const e of readdirSync(path, { withFileTypes: true }))
        if (e.isDirectory()) walk(join(path, e.name), depth + 1);
      execFileSync('rmdir', [path], { stdio: 'ignore' });
    } catch {}
  };
  walk(join(CGROUP_ROOT, rel), 0);
}

/** The kubelet's links in /var/log/containers that point into this node's directory. */
function containerLogLinks(dir: string): string[] {
  if (!existsSync(CONTAINER_LOG_LINKS)) return [];
  return readdirSync(CONTAINER_LOG_LINKS)
    .map((f) => join(CONTAINER_LOG_LINKS, f))
    .filter((link) => {
      try {
        return readlinkSync(link).startsWith(`${dir}/`);
      } catch {
        return false;
      }
    });
}

/** Deepest first: a socket file is removed, a directory only once empty (rmdir), so no one else's file goes. */
function removeCreatedPaths(paths: string[]): void {
  for (const path of [...paths].sort((a, b) => b.length - a.length)) {
    attempt(() => {
      if (lstatSync(path).isDirectory()) rmdirSync(path);
      else rmSync(path, { force: true });
    });
  }
}

/** One teardown step that may fail: the steps after it still run, and nodeLeftovers reports what is left. */
function attempt(step: () => void): void {
  try {
    step();
  } catch {}
}

/** /var/run/netns/x as /proc/self/mountinfo names it (/var/run is a link to /run). */
function canonical(path: string): string {
  try {
    return join(realpathSync(dirname(path)), basename(path));
  } catch {
    return path;
  }
}

function runc(root: string, args: string[]): string {
  try {
    return execFileSync('runc', ['--root', root, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch {
    return '';
  }
}

/**
 * The containers in runc's root: what `runc list` reports, and every state directory there. The
 * directories count too because `runc list` fails as a whole when a container's state goes away
 * while it reads (containerd deleting a pod the test's namespace deletion stopped): a teardown
 * once deleted nothing that way and left 11 containers running.
 */
function containerIds(runcRoot: string): string[] {
  if (!existsSync(runcRoot)) return [];
  let listed: { id: string }[] = [];
  try {
    listed = (JSON.parse(runc(runcRoot, ['list', '--format', 'json']) || 'null') as { id: string }[] | null) ?? [];
  } catch {}
  let dirs: string[] = [];
  try {
    dirs = readdirSync(runcRoot, { withFileTypes: true })
      .filter((e) => e.isDirectory() && /^[0-9a-f]{64}$/.test(e.name))
      .map((e) => e.name);
  } catch {}
  return [...new Set([...listed.map((c) => c.id), ...dirs])];
}

/** The network namespace files (/run/netns/cni-…) the containers joined, from runc's state. */
function networkNamespaces(runcRoot: string, ids: string[]): string[] {
  const paths: string[] = [];
  for (const id of ids) {
    try {
      const state = JSON.parse(readFileSync(join(runcRoot, id, 'state.json'), 'utf8')) as {
        config?: { namespaces?: { type: string; path?: string }[] };
      };
      for (const ns of state.config?.namespaces ?? []) {
        if (ns.type === 'NEWNET' && ns.path?.includes('/netns/')) paths.push(canonical(ns.path));
      }
    } catch {}
  }
  return paths;
}

/** containerd-shim processes serving this containerd (their -address argument is its socket). */
function shimPids(socket: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (!argv[0]?.includes('containerd-shim')) continue;
    const at = argv.indexOf('-address');
    if (at >= 0 && argv[at + 1] === socket) pids.push(Number(entry));
  }
  return pids;
}

/** containerd 1.6 runtime/v2/shim SocketAddress: /run/containerd/s/sha256(socket/namespace/id). */
function shimSocket(socket: string, id: string): string {
  return `/run/containerd/s/${createHash('sha256')
    .update(join(socket, 'k8s.io', id))
    .digest('hex')}`;
}

function mountsUnder(prefixes: string[]): string[] {
  const points = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .map((p) => p.replace(/\\040/g, ' '));
  return points.filter((p) => prefixes.some((pre) => p === pre || p.startsWith(`${pre}/`)));
}

/** Unmounts deepest first; a busy mount is detached lazily. */
function unmountUnder(prefixes: string[]): void {
  for (let round = 0; round < 5; round++) {
    const points = mountsUnder(prefixes).sort((a, b) => b.length - a.length);
    if (points.length === 0) return;
    for (const p of points) {
      try {
        execFileSync('umount', [p], { stdio: 'ignore' });
      } catch {
        try {
          execFileSync('umount', ['-l', p], { stdio: 'ignore' });
        } catch {}
      }
    }
  }
}

/**
 * The CNI cache files of this node's pods (libcni writes them under /var/lib/cni whatever the
 * config says): its network's, and containerd's loopback network's for the same sandboxes.
 */
function cniResults(state: NodeState): string[] {
  if (!existsSync(CNI_RESULTS)) return [];
  const files = readdirSync(CNI_RESULTS);
  const ours = files.filter((f) => f.startsWith(`${state.networkName}-`));
  const sandboxes = ours.map((f) => f.slice(state.networkName.length + 1).split('-')[0]);
  return [...ours, ...files.filter((f) => sandboxes.some((id) => f.startsWith(`cni-loopback-${id}-`)))];
}

/** The network namespaces the CNI cache names for this node's pods (result.interfaces[].sandbox). */
function cniSandboxes(state: NodeState): string[] {
  const paths: string[] = [];
  for (const f of cniResults(state)) {
    try {
      const cached = JSON.parse(readFileSync(join(CNI_RESULTS, f), 'utf8')) as {
        result?: { interfaces?: { sandbox?: string }[] };
      };
      for (const i of cached.result?.interfaces ?? [])
        if (i.sandbox?.includes('/netns/')) paths.push(canonical(i.sandbox));
    } catch {}
  }
  return paths;
}

export function iptablesSave(tool: 'iptables' | 'ip6tables'): string {
  try {
    return execFileSync(`${tool}-save`, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return '';
  }
}

function iptablesUndo(before: { v4: string; v6: string }): { tool: string; args: string[] }[] {
  return (['iptables', 'ip6tables'] as const).flatMap((tool) =>
    undoCommands(
      parseIptablesSave(tool === 'iptables' ? before.v4 : before.v6),
      parseIptablesSave(iptablesSave(tool)),
    ).map((args) => ({ tool, args })),
  );
}

function undoIptables(before: { v4: string; v6: string }): void {
  for (const { tool, args } of iptablesUndo(before)) {
    try {
      execFileSync(tool, ['-w', '5', ...args], { stdio: 'ignore' });
    } catch {}
  }
}

// npm run cluster:up             -> starts a local control plane in the background, installs the CRD,
//                                    prints the kubeconfig path
// npm run cluster:up -- --node   -> also a real node (containerd, runc, CNI bridge, kubelet,
//                                    kube-scheduler: test/support/node.ts); needs root
// npm run cluster:down           -> stops them and removes their directories (and the node's
//                                    mounts, network namespaces, bridge and iptables chains)
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { killAll, startControlPlane } from '../test/support/control-plane.ts';
import { installCrd } from '../test/support/crd.ts';
import { prepareNode, startNode } from '../test/support/node.ts';
import { tearDownNode } from '../test/support/node-teardown.ts';

const cache = process.env.READYGATE_CACHE ?? join(homedir(), '.cache/readygate');
const dir = join(cache, 'cluster');
// Apart from the control plane's directory: that one is removed with rm -r, never through mounts.
const nodeDir = join(cache, 'cluster-node');
const command = process.argv[2];
const withNode = process.argv.includes('--node');

async function up(): Promise<void> {
  if (existsSync(join(dir, 'state.json'))) {
    const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as { kubeconfigPath: string };
    console.error(`a control plane is already up (npm run cluster:down stops it); kubeconfig:`);
    console.log(state.kubeconfigPath);
    return;
  }
  const log = (l: string) => console.error(l);
  // With a node, its network first: kube-apiserver binds the node IP (pods reach it there).
  const prepared = withNode ? prepareNode({ detached: true, dir: nodeDir }) : undefined;
  let cp: Awaited<ReturnType<typeof startControlPlane>>;
  try {
    cp = await startControlPlane({ detached: true, dir, log, node: withNode, bindAddress: prepared?.net.nodeIP });
  } catch (err) {
    await prepared?.stop();
    throw err;
  }
  try {
    await installCrd(cp.kubeconfigPath);
    if (prepared) {
      const node = await startNode(cp, { detached: true, dir: nodeDir, log, prepared });
      console.error(
        `node ${node.nodeName} at ${node.nodeIP}, pods on ${node.podSubnet}; app image ${node.images.app.ref}`,
      );
    }
  } catch (err) {
    await cp.stop();
    throw err;
  }
  console.error(`kube-apiserver ${cp.version} at ${cp.server}; ProbePolicy CRD installed. Try:`);
  console.error(`  ${cp.binDir}/kubectl --kubeconfig ${cp.kubeconfigPath} get probepolicies -A`);
  console.log(cp.kubeconfigPath);
}

async function down(): Promise<void> {
  if (existsSync(nodeDir)) {
    const left = await tearDownNode(nodeDir);
    console.error(left.length === 0 ? 'node stopped and removed' : `node stopped; left behind:\n${left.join('\n')}`);
  }
  if (!existsSync(join(dir, 'state.json'))) {
    console.error('no control plane is up');
    return;
  }
  const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as { pids: number[] };
  await killAll(state.pids);
  rmSync(dir, { recursive: true, force: true });
  console.error('control plane stopped and removed');
}

if (command === 'up') await up();
else if (command === 'down') await down();
else {
  console.error('usage: node scripts/cluster.ts up [--node] | down');
  process.exit(2);
}

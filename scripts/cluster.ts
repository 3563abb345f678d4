// npm run cluster:up   -> starts a local control plane in the background, installs the CRD,
//                          prints the kubeconfig path
// npm run cluster:down -> stops it and removes its directory
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { killAll, startControlPlane } from '../test/support/control-plane.ts';
import { installCrd } from '../test/support/crd.ts';

const dir = join(process.env.READYGATE_CACHE ?? join(homedir(), '.cache/readygate'), 'cluster');
const command = process.argv[2];

if (command === 'up') {
  if (existsSync(join(dir, 'state.json'))) {
    const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as { kubeconfigPath: string };
    console.error(`a control plane is already up (npm run cluster:down stops it); kubeconfig:`);
    console.log(state.kubeconfigPath);
    process.exit(0);
  }
  const cp = await startControlPlane({ detached: true, dir, log: (l) => console.error(l) });
  try {
    await installCrd(cp.kubeconfigPath);
  } catch (err) {
    await cp.stop();
    throw err;
  }
  console.error(`kube-apiserver ${cp.version} at ${cp.server}; ProbePolicy CRD installed. Try:`);
  console.error(`  ${cp.binDir}/kubectl --kubeconfig ${cp.kubeconfigPath} get probepolicies -A`);
  console.log(cp.kubeconfigPath);
} else if (command === 'down') {
  if (!existsSync(join(dir, 'state.json'))) {
    console.error('no control plane is up');
    process.exit(0);
  }
  const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as { pids: number[] };
  await killAll(state.pids);
  const { rmSync } = await import('node:fs');
  rmSync(dir, { recursive: true, force: true });
  console.error('control plane stopped and removed');
} else {
  console.error('usage: node scripts/cluster.ts up|down');
  process.exit(2);
}

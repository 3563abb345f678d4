// Vitest global setup for the real-node tests (vitest.node.config.ts): a control plane of their
// own, started with { node: true }, and a real node next to it (node.ts). The integration
// project's control plane is not touched: its tests rely on the kubelet fixture's Node and on
// pods nothing schedules. Teardown on every exit path; a teardown that leaves anything behind
// (node-teardown.ts lists it) fails the run.
import type { TestProject } from 'vitest/node';
import { type ControlPlane, startControlPlane } from './control-plane.ts';
import { installCrd } from './crd.ts';
import type { ControlPlaneInfo } from './global-setup.ts';
import { type PreparedNode, prepareNode, type RealNode, startNode } from './node.ts';

export interface RealNodeInfo {
  nodeName: string;
  nodeIP: string;
  podSubnet: string;
  appImage: string;
  /** containerd's socket, for importing more images (the operator's: test/support/node-operator.ts). */
  containerdSocket: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    controlPlane: ControlPlaneInfo;
    realNode: RealNodeInfo;
  }
}

let cp: ControlPlane | undefined;
let prepared: PreparedNode | undefined;
let node: RealNode | undefined;

async function stopAll(): Promise<string[]> {
  const left = (await (node ?? prepared)?.stop()) ?? [];
  node = undefined;
  prepared = undefined;
  await cp?.stop();
  cp = undefined;
  return left;
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const log = (line: string) => console.log(`[real-node] ${line}`);
  const onSignal = () => {
    void stopAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    // The node's network first: kube-apiserver binds the node IP, where pods reach it through
    // the `kubernetes` Service (kube-proxy).
    prepared = prepareNode();
    cp = await startControlPlane({ node: true, bindAddress: prepared.net.nodeIP, log });
    await installCrd(cp.kubeconfigPath);
    const started = Date.now();
    node = await startNode(cp, { log, prepared });
    log(`node ${node.nodeName} up in ${((Date.now() - started) / 1000).toFixed(1)} s (${node.dir})`);
  } catch (err) {
    await stopAll();
    throw err;
  }
  const { kubeconfigPath, server, version, binDir, dir, caPem, adminToken } = cp;
  project.provide('controlPlane', { kubeconfigPath, server, version, binDir, dir, caPem, adminToken });
  const { nodeName, nodeIP, podSubnet, images, containerdSocket } = node;
  project.provide('realNode', { nodeName, nodeIP, podSubnet, appImage: images.app.ref, containerdSocket });
  return async () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    const left = await stopAll();
    if (left.length > 0) throw new Error(`the real node left these behind:\n${left.join('\n')}`);
    log('node and control plane stopped; nothing left behind');
  };
}

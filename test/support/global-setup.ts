// Vitest global setup for the integration project: one real control plane for all files,
// the CRD installed once, and teardown on every exit path (the reaper covers crashes).
import type { TestProject } from 'vitest/node';
import { type ControlPlane, startControlPlane } from './control-plane.ts';
import { installCrd } from './crd.ts';

export interface ControlPlaneInfo {
  kubeconfigPath: string;
  server: string;
  version: string;
  binDir: string;
  dir: string;
  caPem: string;
  adminToken: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    controlPlane: ControlPlaneInfo;
  }
}

let cp: ControlPlane | undefined;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const log = (line: string) => console.log(`[control-plane] ${line}`);
  // No silent skipping: if the control plane cannot start, this throws and the run fails.
  cp = await startControlPlane({ log });
  const onSignal = () => {
    void cp?.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  await installCrd(cp.kubeconfigPath);
  log(`CRD installed; kubeconfig ${cp.kubeconfigPath}`);
  const { kubeconfigPath, server, version, binDir, dir, caPem, adminToken } = cp;
  project.provide('controlPlane', { kubeconfigPath, server, version, binDir, dir, caPem, adminToken });
  return async () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cp?.stop();
    log('stopped and removed');
  };
}

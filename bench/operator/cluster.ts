// One control plane for an operator benchmark run: etcd + kube-apiserver (no controller manager),
// the CRD, the chart's ServiceAccount and RBAC for the operator, the benchmark's own API client and
// the listener farm of the pods' apps. Everything stops on every path, including an abort.
import { type ControlPlane, startControlPlane } from '../../test/support/control-plane.ts';
import { installCrd } from '../../test/support/crd.ts';
import { adminKubeConfigFrom } from '../../test/support/kube-admin.ts';
import { operatorKubeconfig } from '../../test/support/operator.ts';
import { Api } from './api.ts';
import { type ListenerFarm, startListenerFarm } from './listeners.ts';

export interface BenchCluster {
  cp: ControlPlane;
  /** The benchmark's client (admin). */
  api: Api;
  /** A kubeconfig that authenticates as the chart's ServiceAccount. */
  operatorKubeconfig: string;
  farm: ListenerFarm;
}

/** The listener farm's own deadline (s): a backstop for a bench that dies without closing its stdin. */
const FARM_MAX_SECONDS = 4 * 3600;

/**
 * Runs fn against a fresh cluster whose listener farm serves the addresses; tears it down after.
 * `helmSet` are the chart values the operator's RBAC is rendered with (e.g. sharding.enabled=true);
 * `featureGates` the kube-apiserver's (e.g. ShardedListAndWatch).
 */
export async function withBenchCluster<T>(
  addresses: string[],
  log: (m: string) => void,
  fn: (c: BenchCluster) => Promise<T>,
  helmSet: string[] = [],
  featureGates?: Record<string, boolean>,
  /** Addresses of one pod each whose probe times the farm keeps (ListenerFarm.gaps). */
  tracked: string[] = [],
): Promise<T> {
  const cp = await startControlPlane({
    controllerManager: false,
    // Lease bodies (a few writes a second): their renewTime splits a renew's latency (shard-observe.ts).
    auditLeaseRequests: true,
    ...(featureGates && { featureGates }),
    log: (l) => log(`control plane: ${l}`),
  });
  const api = new Api(cp.server, cp.caPem, cp.adminToken, 64);
  let farm: ListenerFarm | undefined;
  try {
    await installCrd(cp.kubeconfigPath);
    const kubeconfig = await operatorKubeconfig(adminKubeConfigFrom(cp.kubeconfigPath), cp, helmSet);
    // 4 h, not 1: one size of the sharding bench at 100,000 pods or more takes about an hour.
    farm = await startListenerFarm(addresses, FARM_MAX_SECONDS, tracked);
    log(`listener farm up: ${addresses.length} addresses, port ${farm.port}`);
    return await fn({ cp, api, operatorKubeconfig: kubeconfig, farm });
  } finally {
    await farm?.stop();
    api.close();
    await cp.stop();
  }
}

/** The promise, or a rejection with the signal's reason as soon as it aborts (the work goes on unawaited). */
export function abortable<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

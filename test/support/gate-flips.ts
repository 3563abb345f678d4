// Every transition of a gate condition to False in one namespace, as a watch sees it: a test's
// proof that readygate flipped no healthy pod, whatever it wrote and rewrote in between.
import { CoreV1Api, type KubeConfig, makeInformer, type V1Pod } from '@kubernetes/client-node';

export interface GateFlip {
  pod: string;
  gate: string;
  reason: string;
  message: string;
}

/** Starts a pod watch in `ns`; `flips` grows with every gate (of `isGate`) seen turning False. */
export async function recordGateFlips(
  kc: KubeConfig,
  ns: string,
  isGate: (type: string) => boolean,
): Promise<{ flips: GateFlip[]; stop(): Promise<void> }> {
  const core = kc.makeApiClient(CoreV1Api);
  const informer = makeInformer<V1Pod>(kc, `/api/v1/namespaces/${ns}/pods`, () =>
    core.listNamespacedPod({ namespace: ns }),
  );
  const last = new Map<string, string>();
  const flips: GateFlip[] = [];
  const see = (pod: V1Pod) => {
    for (const c of pod.status?.conditions ?? []) {
      if (!isGate(c.type)) continue;
      const key = `${pod.metadata?.name}/${c.type}`;
      if (c.status === 'False' && last.get(key) !== 'False') {
        flips.push({ pod: pod.metadata?.name ?? '', gate: c.type, reason: c.reason ?? '', message: c.message ?? '' });
      }
      last.set(key, c.status);
    }
  };
  informer.on('add', see);
  informer.on('update', see);
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;
  // A watch that ends with an error is started again (client-node's informer does not); updates
  // missed meanwhile come back in its list, compared with the last status seen.
  informer.on('error', () => {
    if (!stopped) retry = setTimeout(() => void informer.start().catch(() => {}), 1_000);
  });
  await informer.start();
  return {
    flips,
    stop: async () => {
      stopped = true;
      clearTimeout(retry);
      await informer.stop();
    },
  };
}

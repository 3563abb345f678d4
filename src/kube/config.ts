// Where the operator's credentials come from: an explicit kubeconfig, the in-cluster service
// account, or the usual KUBECONFIG/~/.kube/config chain, in that order.
import { KubeConfig } from '@kubernetes/client-node';

/** Loads a KubeConfig from path if given, else in-cluster when running in a pod, else the default chain. */
export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
  else kc.loadFromDefault();
  if (!kc.getCurrentCluster()) throw new Error('no Kubernetes cluster configured (use --kubeconfig or run in a pod)');
  return reuseConnections(kc);
}

// client-node 2.0.1 builds a new undici Agent for every API call (applySecurityAuthentication →
// createDispatcher), so every call opens its own TLS connection, which then idles in that Agent
// for undici's 4 s keep-alive: 1,000 pod patches held 1,000 sockets and ~200 MiB, and cost
// ~1.7 ms CPU each. This keeps one Agent per TLS identity instead, so calls share keep-alive
// connections as client-go's do. The identity is the full dispatcher options (server, proxy, CA,
// client cert and key), so a rotated client certificate gets a fresh Agent.

/** At most this many identities are kept; the oldest is closed (gracefully) beyond it. */
const MAX_DISPATCHERS = 4;

type CreateDispatcher = (cluster: unknown, agentOptions: unknown) => { close(): Promise<void> } | undefined;

/** Makes `kc` reuse one undici Agent per TLS identity across API calls; returns `kc`. */
export function reuseConnections(kc: KubeConfig): KubeConfig {
  // createDispatcher is private in client-node's typings; fail loudly if an upgrade renames it.
  const target = kc as unknown as { createDispatcher?: CreateDispatcher };
  const original = target.createDispatcher;
  if (typeof original !== 'function') throw new Error('client-node KubeConfig.createDispatcher not found');
  const pooled = new Map<string, ReturnType<CreateDispatcher>>();
  target.createDispatcher = function (this: KubeConfig, cluster, agentOptions) {
    const server = cluster as { server?: string; proxyUrl?: string } | null;
    const options = kc.createDispatcherOptions(server as never, agentOptions as never);
    // Buffers (CA, cert, key) by content; JSON.stringify would spell them out byte by byte.
    const key = JSON.stringify([server?.server, options], function (this: Record<string, unknown>, k, v: unknown) {
      const raw = this[k];
      return Buffer.isBuffer(raw) ? raw.toString('base64') : v;
    });
    if (pooled.has(key)) return pooled.get(key);
    const dispatcher = original.call(this, cluster, agentOptions);
    pooled.set(key, dispatcher);
    if (pooled.size > MAX_DISPATCHERS) {
      const [oldestKey, oldest] = pooled.entries().next().value!;
      pooled.delete(oldestKey);
      void oldest?.close().catch(() => {});
    }
    return dispatcher;
  };
  return kc;
}

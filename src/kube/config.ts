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
  const pooled: Array<{ server: string | undefined; options: unknown; dispatcher: ReturnType<CreateDispatcher> }> = [];
  target.createDispatcher = function (this: KubeConfig, cluster, agentOptions) {
    const server = (cluster as { server?: string } | null)?.server;
    const options = kc.createDispatcherOptions(cluster as never, agentOptions as never);
    // Compared by content (CA, cert and key are fresh Buffers on every call), allocating nothing.
    const hit = pooled.find((p) => p.server === server && sameValue(p.options, options));
    if (hit) return hit.dispatcher;
    const dispatcher = original.call(this, cluster, agentOptions);
    pooled.push({ server, options, dispatcher });
    if (pooled.length > MAX_DISPATCHERS) {
      const oldest = pooled.shift();
      void oldest?.dispatcher?.close().catch(() => {});
    }
    return dispatcher;
  };
  return kc;
}

/** Deep equality for dispatcher options: plain objects, arrays, Buffers and primitives. */
function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Buffer.isBuffer(a) || Buffer.isBuffer(b)) return Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b);
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  let n = 0;
  for (const k in ra) {
    if (!Object.hasOwn(ra, k)) continue;
    n++;
    if (!Object.hasOwn(rb, k) || !sameValue(ra[k], rb[k])) return false;
  }
  for (const k in rb) if (Object.hasOwn(rb, k)) n--;
  return n === 0;
}

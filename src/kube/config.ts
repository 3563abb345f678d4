// Where the operator's credentials come from: an explicit kubeconfig, the in-cluster service
// account, or the usual KUBECONFIG/~/.kube/config chain, in that order.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeconfigError } from './errors.ts';

export type KubeconfigSource = 'file' | 'in-cluster' | 'default';

export const NO_KUBECONFIG = 'no kubeconfig found: set KUBECONFIG or pass --kubeconfig';

/**
 * Pure: where the credentials come from, or undefined when there are none (home is $HOME, as
 * client-node reads it). client-node's default chain would then fall
 * back to http://localhost:8080, which the operator would retry forever.
 */
export function kubeconfigSource(
  path: string | undefined,
  env: NodeJS.ProcessEnv,
  home: string,
  exists: (file: string) => boolean,
): KubeconfigSource | undefined {
  if (path) return 'file';
  if (env.KUBERNETES_SERVICE_HOST) return 'in-cluster';
  if (env.KUBECONFIG || (home !== '' && exists(join(home, '.kube', 'config')))) return 'default';
  return undefined;
}

/**
 * Loads a KubeConfig from path if given, else in-cluster when running in a pod, else the default
 * chain ($KUBECONFIG, ~/.kube/config). Throws KubeconfigError when there is none or it cannot be read.
 */
export function loadKubeConfig(path?: string): KubeConfig {
  const source = kubeconfigSource(path, process.env, process.env.HOME ?? '', existsSync);
  if (!source) throw new KubeconfigError(NO_KUBECONFIG);
  const kc = new KubeConfig();
  try {
    if (source === 'file') kc.loadFromFile(path ?? '');
    else if (source === 'in-cluster') kc.loadFromCluster();
    else kc.loadFromDefault();
  } catch (err) {
    throw new KubeconfigError(`cannot read kubeconfig: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!kc.getCurrentCluster()) {
    throw new KubeconfigError('the kubeconfig has no current cluster: set its current-context, or pass --kubeconfig');
  }
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

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
  return kc;
}

// The readygate operator as a cluster runs it, on the real node (test/node/in-cluster.test.ts):
// its image (scripts/build-image.sh) imported into the node's containerd, and the chart installed
// by helm into a namespace enforcing the restricted Pod Security Standard. Its pods reach
// kube-apiserver in-cluster, through the `kubernetes` Service and kube-proxy (test/support/node.ts).
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CHART = join(ROOT, 'charts/readygate');
const run = promisify(execFile);

export interface OperatorImage {
  repository: string;
  tag: string;
  archive: string;
}

/** Builds the operator's image (cached by content); its last line is "<repository:tag> <archive>". */
export async function buildOperatorImage(): Promise<OperatorImage> {
  const { stdout } = await run('bash', [join(ROOT, 'scripts/build-image.sh')], {
    cwd: ROOT,
    maxBuffer: 64 * 1024 * 1024,
  }).catch((err: Error & { stderr?: string }) => {
    throw new Error(`scripts/build-image.sh failed: ${err.message}\n${err.stderr?.slice(-4000)}`);
  });
  const [ref, archive] = stdout.trim().split('\n').pop()?.split(' ') ?? [];
  const colon = ref?.lastIndexOf(':') ?? -1;
  if (!ref || !archive || colon < 0) throw new Error(`scripts/build-image.sh printed no "<tag> <archive>": ${stdout}`);
  return { repository: ref.slice(0, colon), tag: ref.slice(colon + 1), archive };
}

/** Imports a docker-archive into the node's containerd, where the kubelet finds it (pullPolicy Never). */
export function importImage(containerdSocket: string, archive: string): void {
  execFileSync('ctr', ['--address', containerdSocket, '--namespace', 'k8s.io', 'images', 'import', archive], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export interface HelmRef {
  binDir: string;
  kubeconfigPath: string;
}

/** Runs helm against the control plane; throws with its output when it fails. */
export function helm(cp: HelmRef, args: string[]): string {
  const r = spawnSync(join(cp.binDir, 'helm'), [...args, '--kubeconfig', cp.kubeconfigPath], { encoding: 'utf8' });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`helm ${args[0]} failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

/**
 * `helm install` of the chart with the image given and the node's CRD left alone (the global
 * setup installed it without Helm's ownership): every other value is the chart's default, but
 * `set` (e.g. exec.enabled=true).
 */
export function helmInstall(
  cp: HelmRef,
  release: string,
  namespace: string,
  image: OperatorImage,
  set: string[],
): void {
  const values = [
    `image.repository=${image.repository}`,
    `image.tag=${image.tag}`,
    'image.pullPolicy=Never',
    'crds.enabled=false',
    ...set,
  ];
  helm(cp, ['install', release, CHART, '--namespace', namespace, ...values.flatMap((v) => ['--set', v])]);
}

/** `helm upgrade` of the release with its values kept (`--reuse-values`) and `set` on top. */
export function helmUpgrade(cp: HelmRef, release: string, namespace: string, set: string[]): void {
  helm(cp, [
    'upgrade',
    release,
    CHART,
    '--namespace',
    namespace,
    '--reuse-values',
    ...set.flatMap((v) => ['--set', v]),
  ]);
}

// Runs the real operator (node src/main.ts run) as a child process against the test control
// plane, under the ServiceAccount and RBAC that the Helm chart ships — never as cluster admin.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CoreV1Api,
  type KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  loadAllYaml,
} from '@kubernetes/client-node';
import { freePort, killAll, writeKubeconfig } from './control-plane.ts';
import { eventually } from './wait.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const OPERATOR_NAMESPACE = 'readygate-system';
export const OPERATOR_SA = 'readygate';
export const OPERATOR_USER = `system:serviceaccount:${OPERATOR_NAMESPACE}:${OPERATOR_SA}`;

// The FlowSchema too: it decides where API Priority and Fairness queues the operator's Lease calls.
const INSTALLED_KINDS = new Set([
  'ServiceAccount',
  'ClusterRole',
  'ClusterRoleBinding',
  'Role',
  'RoleBinding',
  'FlowSchema',
]);

/**
 * Installs the chart's ServiceAccount, RBAC objects and Lease FlowSchema (rendered by `helm template`
 * with the given --set values) and returns a kubeconfig path that authenticates as that ServiceAccount.
 */
export async function operatorKubeconfig(
  admin: KubeConfig,
  cp: { binDir: string; dir: string; server: string; caPem: string },
  set: string[] = [],
): Promise<string> {
  const rendered = execFileSync(
    join(cp.binDir, 'helm'),
    [
      'template',
      'readygate',
      join(ROOT, 'charts/readygate'),
      '--namespace',
      OPERATOR_NAMESPACE,
      ...set.flatMap((s) => ['--set', s]),
    ],
    { encoding: 'utf8' },
  );
  const objects = (loadAllYaml(rendered) as KubernetesObject[]).filter((o) => o && INSTALLED_KINDS.has(o.kind ?? ''));
  if (!objects.some((o) => o.kind === 'ServiceAccount')) throw new Error('the chart rendered no ServiceAccount');
  const core = admin.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: OPERATOR_NAMESPACE } } }).catch(() => {});
  const client = KubernetesObjectApi.makeApiClient(admin);
  for (const obj of objects) {
    obj.metadata = { ...obj.metadata, namespace: obj.metadata?.namespace ?? OPERATOR_NAMESPACE };
    try {
      await client.create(obj);
    } catch (err) {
      if ((err as { code?: number }).code !== 409) throw err;
      const current = await client.read(obj as KubernetesObject & { metadata: { name: string } });
      obj.metadata.resourceVersion = current.metadata?.resourceVersion;
      await client.replace(obj);
    }
  }
  const token = await core.createNamespacedServiceAccountToken({
    name: OPERATOR_SA,
    namespace: OPERATOR_NAMESPACE,
    body: { spec: { audiences: [], expirationSeconds: 3600 * 6 } },
  });
  const path = join(cp.dir, `operator-${Date.now()}.kubeconfig`);
  writeKubeconfig(path, cp.server, cp.caPem, OPERATOR_SA, token.status?.token ?? '');
  return path;
}

/**
 * A kubeconfig for the chart's ServiceAccount (installed by operatorKubeconfig) with a token of
 * its own, and that token's JTI: the audit log's credential id, which tells apart replicas that
 * share the ServiceAccount. Written into cp.dir as <name>.kubeconfig.
 */
export async function mintKubeconfig(
  admin: KubeConfig,
  cp: { dir: string; server: string; caPem: string },
  name: string,
): Promise<{ path: string; jti: string }> {
  const token =
    (
      await admin.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
        name: OPERATOR_SA,
        namespace: OPERATOR_NAMESPACE,
        body: { spec: { audiences: [], expirationSeconds: 3600 } },
      })
    ).status?.token ?? '';
  const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as { jti?: string };
  if (!payload.jti) throw new Error('the ServiceAccount token has no jti claim');
  const path = join(cp.dir, `${name}.kubeconfig`);
  writeKubeconfig(path, cp.server, cp.caPem, OPERATOR_SA, token);
  return { path, jti: payload.jti };
}

export interface OperatorProcess {
  child: ChildProcess;
  healthUrl: string;
  logPath: string;
  /** Graceful stop (SIGTERM) that waits for the process to exit; SIGKILL after killAfterMs, if given. */
  stop(killAfterMs?: number): Promise<void>;
  /** SIGKILL, as a node failure would. */
  kill(): Promise<void>;
  log(): string;
}

/** Starts `node src/main.ts run` with the kubeconfig and flags, and resolves once /healthz answers. */
export async function startOperator(
  kubeconfigPath: string,
  dir: string,
  args: string[] = [],
  env: Record<string, string> = {},
  /** Node.js flags before the script (V8 flags NODE_OPTIONS does not take, e.g. --trace-gc). */
  nodeArgs: string[] = [],
): Promise<OperatorProcess> {
  const port = await freePort();
  const logPath = join(dir, `operator-${port}.log`);
  const fd = openSync(logPath, 'a');
  const child = spawn(
    process.execPath,
    [
      ...nodeArgs,
      join(ROOT, 'src/main.ts'),
      'run',
      '--kubeconfig',
      kubeconfigPath,
      '--health-addr',
      `127.0.0.1:${port}`,
      '--log-level',
      'debug',
      ...args,
    ],
    { stdio: ['ignore', fd, fd], env: { ...process.env, ...env } },
  );
  closeSync(fd);
  killWithParent(child, dir);
  const healthUrl = `http://127.0.0.1:${port}`;
  const log = () => readFileSync(logPath, 'utf8');
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  const waitExit = () => new Promise<void>((resolve) => (exited() ? resolve() : child.once('exit', () => resolve())));
  await eventually(async () => {
    if (exited()) throw new Error(`operator exited (${child.exitCode ?? child.signalCode}):\n${log().slice(-3000)}`);
    const res = await fetch(`${healthUrl}/healthz`);
    if (!res.ok) throw new Error(`healthz ${res.status}`);
  }, 30_000);
  return {
    child,
    healthUrl,
    logPath,
    log,
    stop: async (killAfterMs) => {
      if (!exited()) child.kill('SIGTERM');
      const timer =
        killAfterMs === undefined ? undefined : setTimeout(() => exited() || child.kill('SIGKILL'), killAfterMs);
      await waitExit();
      clearTimeout(timer);
    },
    kill: async () => {
      if (child.pid && !exited()) await killAll([child.pid], 0);
      await waitExit();
    },
  };
}

/**
 * Kills `child` if this process ends first, however it ends: an 'exit' listener covers
 * process.exit(), and a detached reaper (reaper.ts) covers signals, SIGKILL and crashes (an
 * interrupted test run or benchmark left its operator running, probing with no API server).
 * Both go once the child exited; the reaper stops when its directory is removed.
 */
export function killWithParent(child: ChildProcess, stateDir: string): void {
  if (child.pid === undefined) return;
  const dir = mkdtempSync(join(stateDir, 'reaper-'));
  writeFileSync(join(dir, 'pids'), String(child.pid));
  const reaper = spawn(process.execPath, [join(ROOT, 'test/support/reaper.ts'), String(process.pid), dir], {
    detached: true,
    stdio: 'ignore',
  });
  reaper.unref();
  const kill = () => child.kill('SIGKILL');
  process.once('exit', kill);
  child.once('exit', () => {
    process.off('exit', kill);
    rmSync(dir, { recursive: true, force: true });
  });
}

/** Total probes an operator process has made, from its /metrics (a liveness control for "no writes"). */
export async function probesMade(healthUrl: string): Promise<number> {
  const text = await (await fetch(`${healthUrl}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith('readygate_probes_total{'))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

/** Probes an operator process has made for one policy, optionally of one result (success, failure, error). */
export async function probesOf(healthUrl: string, policy: string, result?: string): Promise<number> {
  const text = await (await fetch(`${healthUrl}/metrics`)).text();
  return text
    .split('\n')
    .filter(
      (l) =>
        l.startsWith('readygate_probes_total{') &&
        l.includes(`policy="${policy}"`) &&
        (result === undefined || l.includes(`result="${result}"`)),
    )
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

/**
 * Waits until an operator process has made `rounds` more probes per target of each policy
 * (`targets` maps a policy to its number of targets): the evidence, instead of a sleep, that it
 * had the chance to act before a test asserts that it did not. A policy's count is not per target,
 * but some target got at least `rounds` of them, so at least `rounds - 1` periods went by.
 */
export function probeRounds(
  healthUrl: string,
  targets: Record<string, number>,
  rounds: number,
  timeoutMs = 60_000,
): Promise<void> {
  return probeRoundsAcross([healthUrl], targets, rounds, timeoutMs);
}

/** probeRounds with the probes summed over several sharded replicas, each probing its share. */
export async function probeRoundsAcross(
  healthUrls: string[],
  targets: Record<string, number>,
  rounds: number,
  timeoutMs = 60_000,
): Promise<void> {
  const policies = Object.entries(targets);
  const made = async (policy: string) =>
    (await Promise.all(healthUrls.map((u) => probesOf(u, policy)))).reduce((a, b) => a + b, 0);
  const goals = await Promise.all(policies.map(async ([p, n]) => (await made(p)) + n * rounds));
  // Plain errors, not expect(): scripts and bench/ import this module outside vitest.
  await eventually(async () => {
    for (const [i, [policy]] of policies.entries()) {
      const now = await made(policy);
      if (now < (goals[i] as number)) throw new Error(`${policy}: ${now} probes made, waiting for ${goals[i]}`);
    }
  }, timeoutMs);
}

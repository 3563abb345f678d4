// The kubelet's part, played by a small test fixture (docs/testing.md, "The kubelet's part").
// There is no kubelet in the test control plane. For the pods it watches, this fixture:
//   1. binds unscheduled pods to a fake Node through the pods/binding subresource;
//   2. "runs" them: gives each a podIP from 127.0.0.0/8 and, for every declared container port,
//      starts a tiny HTTP/TCP app on podIP:port whose health the test controls (see AppBehaviour);
//   3. reports containers ready and recomputes the Ready condition the way the kubelet's
//      GeneratePodReadyCondition does: ContainersReady AND every readiness gate condition True;
//   4. finishes graceful deletion (deletes terminating pods with grace period 0) and stops their apps.
// It is test code, never imported by src/. Nothing but loopback addresses is ever used.
import { createServer, type Server } from 'node:http';
import {
  CoreV1Api,
  type KubeConfig,
  makeInformer,
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
  type V1PodCondition,
} from '@kubernetes/client-node';

export const NODE_NAME = 'fixture-node';

/**
 * How a pod's app answers, chosen by the pod's `fixture.readygate.dev/app` annotation
 * (healthy | failing | silent) and changeable at run time with setApp(). An app answers
 * GET on any path with 200 "ok" when healthy, 503 when failing, and never when silent.
 */
export type AppBehaviour = 'healthy' | 'failing' | 'silent';
export const APP_ANNOTATION = 'fixture.readygate.dev/app';

interface RunningPod {
  uid: string;
  image: string;
  ip: string;
  servers: Server[];
  behaviour: AppBehaviour;
}

export interface KubeletFixtureOptions {
  /** Namespaces to play the kubelet in (each gets its own informer). */
  namespaces: string[];
  /** First address handed out; pods get consecutive addresses after it. Must be in 127.0.0.0/8. */
  firstIp?: string;
  log?: (line: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class KubeletFixture {
  readonly running = new Map<string, RunningPod>();
  private readonly core: CoreV1Api;
  private readonly informers: { stop(): Promise<void> | void }[] = [];
  private nextIp: number;
  private stopped = false;
  private readonly inFlight = new Set<string>();
  private readonly pending = new Map<string, V1Pod>();
  private readonly imageBehaviour = new Map<string, AppBehaviour>();
  private readonly log: (line: string) => void;

  private readonly kc: KubeConfig;
  private readonly opts: KubeletFixtureOptions;

  constructor(kc: KubeConfig, opts: KubeletFixtureOptions) {
    this.kc = kc;
    this.opts = opts;
    this.core = kc.makeApiClient(CoreV1Api);
    const [a, b, c, d] = (opts.firstIp ?? '127.10.0.1').split('.').map(Number) as [number, number, number, number];
    if (a !== 127) throw new Error('the kubelet fixture only hands out 127.0.0.0/8 addresses');
    this.nextIp = (a << 24) | (b << 16) | (c << 8) | d;
    this.log = opts.log ?? (() => {});
  }

  /** Starts watching the namespaces; resolves once each informer has listed. */
  async start(): Promise<void> {
    await this.core
      .createNode({ body: { metadata: { name: NODE_NAME, labels: { 'kubernetes.io/hostname': NODE_NAME } } } })
      .catch(ignoreConflict);
    for (const ns of this.opts.namespaces) {
      const informer = makeInformer<V1Pod>(this.kc, `/api/v1/namespaces/${ns}/pods`, () =>
        this.core.listNamespacedPod({ namespace: ns }),
      );
      const handle = (pod: V1Pod) => this.enqueue(pod);
      informer.on('add', handle);
      informer.on('update', handle);
      informer.on('delete', (pod: V1Pod) => this.forget(pod));
      informer.on('error', () => {
        if (!this.stopped) setTimeout(() => void informer.start().catch(() => {}), 500);
      });
      await informer.start();
      this.informers.push(informer);
    }
  }

  /** Stops the informers and every app server. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const informer of this.informers) await informer.stop();
    await Promise.all([...this.running.values()].flatMap((p) => p.servers.map((s) => closeServer(s))));
    this.running.clear();
  }

  /** Changes how a running pod's app answers (the test's way to break or heal a pod). */
  setApp(namespace: string, name: string, behaviour: AppBehaviour): void {
    const pod = this.running.get(`${namespace}/${name}`);
    if (!pod) throw new Error(`pod ${namespace}/${name} is not running in the fixture`);
    pod.behaviour = behaviour;
  }

  /** Sets how every pod running image answers, now and when started later (a fixed release). */
  setImageApp(image: string, behaviour: AppBehaviour): void {
    this.imageBehaviour.set(image, behaviour);
    for (const pod of this.running.values()) if (pod.image === image) pod.behaviour = behaviour;
  }

  /** The address the fixture gave a pod, if it runs. */
  ipOf(namespace: string, name: string): string | undefined {
    return this.running.get(`${namespace}/${name}`)?.ip;
  }

  // One sync at a time per pod; the newest object seen while a sync runs is synced afterwards.
  private enqueue(pod: V1Pod): void {
    const key = `${pod.metadata?.namespace}/${pod.metadata?.name}`;
    if (this.stopped) return;
    if (this.inFlight.has(key)) {
      this.pending.set(key, pod);
      return;
    }
    this.inFlight.add(key);
    void this.sync(pod)
      .catch((err: unknown) => this.log(`sync ${key}: ${(err as Error).message?.split('\n')[0]}`))
      .finally(() => {
        this.inFlight.delete(key);
        const next = this.pending.get(key);
        this.pending.delete(key);
        if (next) this.enqueue(next);
      });
  }

  private forget(pod: V1Pod): void {
    const key = `${pod.metadata?.namespace}/${pod.metadata?.name}`;
    const running = this.running.get(key);
    if (running && running.uid === pod.metadata?.uid) {
      this.running.delete(key);
      for (const s of running.servers) void closeServer(s);
    }
  }

  private async sync(pod: V1Pod): Promise<void> {
    const namespace = pod.metadata?.namespace ?? '';
    const name = pod.metadata?.name ?? '';
    const key = `${namespace}/${name}`;
    if (pod.metadata?.deletionTimestamp) {
      // The kubelet would stop the containers, then confirm the deletion with grace period 0.
      this.forget(pod);
      await this.core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0 }).catch(ignoreNotFound);
      return;
    }
    if (!pod.spec?.nodeName) {
      await this.core
        .createNamespacedBinding({
          namespace,
          body: { metadata: { name }, target: { apiVersion: 'v1', kind: 'Node', name: NODE_NAME } },
        })
        .catch(ignoreConflict);
      return; // the binding's update event brings the pod back here
    }
    let running = this.running.get(key);
    if (running && running.uid !== pod.metadata?.uid) {
      this.forget({ metadata: { namespace, name, uid: running.uid } });
      running = undefined;
    }
    if (!running) {
      const ip = pod.status?.podIP ?? this.allocateIp();
      const image = pod.spec.containers[0]?.image ?? '';
      const behaviour =
        this.imageBehaviour.get(image) ??
        (pod.metadata?.annotations?.[APP_ANNOTATION] as AppBehaviour | undefined) ??
        'healthy';
      running = { uid: pod.metadata?.uid ?? '', image, ip, servers: [], behaviour };
      this.running.set(key, running);
      const ports = (pod.spec.containers ?? []).flatMap((c) => c.ports ?? []);
      for (const port of ports) running.servers.push(await startApp(running, port.containerPort));
    }
    const status = desiredStatus(pod, running.ip);
    if (statusEqual(pod, status)) return;
    await this.core
      .patchNamespacedPodStatus(
        { name, namespace, body: { metadata: { uid: pod.metadata?.uid }, status } },
        setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
      )
      .catch(ignoreNotFound);
  }

  private allocateIp(): string {
    const n = this.nextIp++;
    return [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
  }
}

/** The pod status a kubelet would report for a running pod whose containers are all ready. */
export function desiredStatus(pod: V1Pod, ip: string): Record<string, unknown> {
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const existing = new Map((pod.status?.conditions ?? []).map((c) => [c.type, c]));
  const since = (type: string, status: string) => {
    const c = existing.get(type);
    return c?.status === status && c.lastTransitionTime ? toRfc3339(c.lastTransitionTime) : now;
  };
  const gates = (pod.spec?.readinessGates ?? []).map((g) => g.conditionType);
  // pkg/kubelet/status/generate.go GeneratePodReadyCondition: containers ready, then each gate.
  const missing = gates.filter((t) => !existing.has(t));
  const notTrue = gates.filter((t) => existing.has(t) && existing.get(t)?.status !== 'True');
  let ready: Partial<V1PodCondition> = { status: 'True' };
  if (missing.length > 0) {
    ready = {
      status: 'False',
      reason: 'ReadinessGatesNotReady',
      message: `corresponding condition of pod readiness gate "${missing[0]}" does not exist.`,
    };
  } else if (notTrue.length > 0) {
    ready = {
      status: 'False',
      reason: 'ReadinessGatesNotReady',
      message: `the status of pod readiness gate "${notTrue[0]}" is not "True", but ${existing.get(notTrue[0] ?? '')?.status}`,
    };
  }
  const cond = (type: string, c: Partial<V1PodCondition>) => ({
    type,
    status: c.status,
    reason: c.reason ?? null,
    message: c.message ?? null,
    lastProbeTime: null,
    lastTransitionTime: since(type, c.status ?? ''),
  });
  const startedAt = pod.status?.startTime ? toRfc3339(pod.status.startTime) : now;
  return {
    phase: 'Running',
    hostIP: '127.0.0.1',
    podIP: ip,
    podIPs: [{ ip }],
    startTime: startedAt,
    conditions: [
      cond('PodScheduled', { status: 'True' }),
      cond('Initialized', { status: 'True' }),
      cond('ContainersReady', { status: 'True' }),
      cond('Ready', ready),
    ],
    containerStatuses: (pod.spec?.containers ?? []).map((c) => ({
      name: c.name,
      image: c.image ?? '',
      imageID: '',
      ready: true,
      started: true,
      restartCount: 0,
      state: { running: { startedAt } },
    })),
  };
}

function statusEqual(pod: V1Pod, desired: Record<string, unknown>): boolean {
  const s = pod.status;
  if (s?.phase !== 'Running' || s.podIP !== desired.podIP) return false;
  const want = desired.conditions as { type: string; status: string; reason: string | null }[];
  return want.every((w) => {
    const have = s.conditions?.find((c) => c.type === w.type);
    return have?.status === w.status && (have.reason ?? null) === w.reason;
  });
}

function toRfc3339(t: Date | string): string {
  return (typeof t === 'string' ? new Date(t) : t).toISOString().replace(/\.\d+Z$/, 'Z');
}

async function startApp(pod: RunningPod, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    req.resume();
    if (pod.behaviour === 'silent') return; // never answers; the prober's timeout must fire
    res.writeHead(pod.behaviour === 'healthy' ? 200 : 503, { 'content-type': 'text/plain', connection: 'close' });
    res.end(pod.behaviour === 'healthy' ? 'ok\n' : 'unavailable\n');
  });
  for (let attempt = 0; ; attempt++) {
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, pod.ip, () => {
          server.off('error', reject);
          resolve();
        });
      });
      return server;
    } catch (err) {
      // A replaced pod may reuse the address while the old server still closes.
      if (attempt >= 20) throw err;
      await sleep(50);
    }
  }
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

function ignoreNotFound(err: unknown): void {
  if ((err as { code?: number }).code !== 404) throw err;
}
function ignoreConflict(err: unknown): void {
  if ((err as { code?: number }).code !== 409) throw err;
}

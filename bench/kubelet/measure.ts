// How long a kubelet takes to turn a gate condition into the pod's Ready condition: the gate is
// patched on pods/status (as readygate does) and a watch on the namespace sees Ready follow. One pod
// at a time, so that each figure is one kubelet reaction, not a queue. The same code runs against the
// real kubelet and against the fixture that plays it (test/support/kubelet-fixture.ts).
import {
  CoreV1Api,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
  Watch,
} from '@kubernetes/client-node';

export interface Transitions {
  /** ms from sending the gate True patch to the watch showing Ready True. */
  toReady: number[];
  /** ms from sending the gate False patch to the watch showing Ready False. */
  toNotReady: number[];
}

/** Longest a single transition may take before the run fails (a kubelet that never reacts). */
const TRANSITION_DEADLINE_MS = 60_000;

type ReadyState = 'True' | 'False' | 'Unknown';
const readyOf = (pod: V1Pod): ReadyState =>
  (pod.status?.conditions?.find((c) => c.type === 'Ready')?.status as ReadyState | undefined) ?? 'Unknown';

/** Follows the Ready condition of every pod in a namespace; `until` resolves when a pod reaches a state. */
class ReadyWatch {
  readonly #ready = new Map<string, ReadyState>();
  readonly #waiters = new Map<string, { want: ReadyState; resolve: () => void }>();
  #abort: AbortController | undefined;

  static async start(kc: KubeConfig, namespace: string, resourceVersion: string): Promise<ReadyWatch> {
    const w = new ReadyWatch();
    w.#abort = await new Watch(kc).watch(
      `/api/v1/namespaces/${namespace}/pods`,
      { resourceVersion, allowWatchBookmarks: true },
      (type: string, pod: V1Pod) => {
        if (type === 'ADDED' || type === 'MODIFIED') w.#seen(pod);
      },
      () => {},
    );
    return w;
  }

  #seen(pod: V1Pod): void {
    const name = pod.metadata?.name ?? '';
    const state = readyOf(pod);
    this.#ready.set(name, state);
    const waiter = this.#waiters.get(name);
    if (waiter && waiter.want === state) {
      this.#waiters.delete(name);
      waiter.resolve();
    }
  }

  until(name: string, want: ReadyState): Promise<void> {
    if (this.#ready.get(name) === want) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(name);
        reject(new Error(`${name}: Ready did not become ${want} within ${TRANSITION_DEADLINE_MS} ms`));
      }, TRANSITION_DEADLINE_MS);
      this.#waiters.set(name, {
        want,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  stop(): void {
    this.#abort?.abort();
  }
}

/**
 * For each pod in turn: the gate True, then False, each timed until the watch shows Ready follow.
 * The pods must list `gate` in spec.readinessGates and have ready containers (Ready False, waiting
 * only for the gate).
 */
export async function measureTransitions(
  kc: KubeConfig,
  namespace: string,
  pods: readonly string[],
  gate: string,
): Promise<Transitions> {
  const core = kc.makeApiClient(CoreV1Api);
  const list = await core.listNamespacedPod({ namespace });
  const watch = await ReadyWatch.start(kc, namespace, list.metadata?.resourceVersion ?? '0');
  const out: Transitions = { toReady: [], toNotReady: [] };
  try {
    for (const name of pods) {
      out.toReady.push(await timedFlip(core, watch, namespace, name, gate, 'True'));
      out.toNotReady.push(await timedFlip(core, watch, namespace, name, gate, 'False'));
    }
  } finally {
    watch.stop();
  }
  return out;
}

async function timedFlip(
  core: CoreV1Api,
  watch: ReadyWatch,
  namespace: string,
  name: string,
  gate: string,
  status: 'True' | 'False',
): Promise<number> {
  const reached = watch.until(name, status);
  reached.catch(() => {}); // awaited below; a failed patch must not leave it unhandled
  const start = performance.now();
  await core.patchNamespacedPodStatus(
    {
      name,
      namespace,
      body: { status: { conditions: [{ type: gate, status, lastTransitionTime: new Date() }] } },
    },
    setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
  );
  await reached;
  return performance.now() - start;
}

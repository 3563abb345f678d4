// Watches the pods of one namespace and follows one gate condition per pod, with the time (this
// process's performance.now()) at which each change was observed: the benchmark's view of "the
// condition as seen by a watch". Keeps running counts so that waiting for "all N True" is O(1)
// per event, and re-watches (or relists on 410 Gone) if the stream ends.
import type { Api } from './api.ts';

export type GateStatus = 'True' | 'False' | undefined;

export interface PodView {
  name: string;
  uid: string;
  ip?: string;
  gate: GateStatus;
  /** When the gate last changed, as observed here (ms, performance.now()). */
  gateAt: number;
}

interface PodLike {
  metadata: { name: string; uid: string; resourceVersion: string };
  status?: { podIP?: string; conditions?: { type: string; status: string }[] };
}

type Transition = (pod: PodView, from: GateStatus, at: number) => void;

interface Waiter {
  check: () => boolean;
  resolve: (at: number) => void;
}

export class GateWatch {
  readonly pods = new Map<string, PodView>();
  readonly #api: Api;
  readonly #ns: string;
  readonly #type: string;
  readonly #listeners = new Set<Transition>();
  #waiters: Waiter[] = [];
  #counts = { True: 0, False: 0, none: 0 };
  #rv = '';
  #close: (() => void) | undefined;
  #stopped = false;
  /** Events seen, for the record. */
  events = 0;
  restarts = 0;

  private constructor(api: Api, ns: string, conditionType: string) {
    this.#api = api;
    this.#ns = ns;
    this.#type = conditionType;
  }

  static async start(api: Api, ns: string, conditionType: string): Promise<GateWatch> {
    const w = new GateWatch(api, ns, conditionType);
    await w.#list();
    w.#watch();
    return w;
  }

  count(status: 'True' | 'False' | 'none'): number {
    return this.#counts[status];
  }

  onTransition(fn: Transition): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Resolves with the time the predicate first held (now, if it already does); rejects after timeoutMs. */
  until(check: () => boolean, timeoutMs: number, what: string): Promise<number> {
    if (check()) return Promise.resolve(performance.now());
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(new Error(`${what}: not reached within ${(timeoutMs / 1000).toFixed(0)} s`));
      }, timeoutMs);
      const waiter: Waiter = {
        check,
        resolve: (at) => {
          clearTimeout(timer);
          resolve(at);
        },
      };
      this.#waiters.push(waiter);
    });
  }

  stop(): void {
    this.#stopped = true;
    this.#close?.();
  }

  async #list(): Promise<void> {
    let cont = '';
    const seen = new Set<string>();
    do {
      const page = await this.#api.request<{
        metadata: { resourceVersion: string; continue?: string };
        items: PodLike[];
      }>('GET', `/api/v1/namespaces/${this.#ns}/pods?limit=1000${cont ? `&continue=${encodeURIComponent(cont)}` : ''}`);
      for (const p of page.items) {
        seen.add(p.metadata.name);
        this.#apply(p, performance.now());
      }
      this.#rv = page.metadata.resourceVersion;
      cont = page.metadata.continue ?? '';
    } while (cont);
    for (const name of [...this.pods.keys()]) if (!seen.has(name)) this.#remove(name);
    this.#checkWaiters(performance.now());
  }

  #watch(): void {
    if (this.#stopped) return;
    const path = `/api/v1/namespaces/${this.#ns}/pods?watch=1&allowWatchBookmarks=true&timeoutSeconds=3000&resourceVersion=${this.#rv}`;
    this.#close = this.#api.stream(
      path,
      (line) => {
        const at = performance.now();
        const ev = JSON.parse(line) as { type: string; object: PodLike & { code?: number } };
        this.events++;
        if (ev.type === 'ERROR') {
          this.#rv = ev.object.code === 410 ? '' : this.#rv;
          return;
        }
        if (ev.object.metadata?.resourceVersion) this.#rv = ev.object.metadata.resourceVersion;
        if (ev.type === 'BOOKMARK') return;
        if (ev.type === 'DELETED') this.#remove(ev.object.metadata.name);
        else this.#apply(ev.object, at);
        this.#checkWaiters(at);
      },
      () => {
        if (this.#stopped) return;
        this.restarts++;
        setTimeout(() => {
          if (this.#stopped) return;
          const relist = this.#rv === '' ? this.#list() : Promise.resolve();
          relist.then(
            () => this.#watch(),
            () => setTimeout(() => this.#watch(), 500),
          );
        }, 100);
      },
    );
  }

  #apply(p: PodLike, at: number): void {
    const gate = p.status?.conditions?.find((c) => c.type === this.#type)?.status as GateStatus;
    const name = p.metadata.name;
    let view = this.pods.get(name);
    if (!view) {
      view = { name, uid: p.metadata.uid, ip: p.status?.podIP, gate, gateAt: at };
      this.pods.set(name, view);
      this.#counts[gate ?? 'none']++;
      return;
    }
    view.ip = p.status?.podIP;
    view.uid = p.metadata.uid;
    if (view.gate === gate) return;
    const from = view.gate;
    this.#counts[from ?? 'none']--;
    this.#counts[gate ?? 'none']++;
    view.gate = gate;
    view.gateAt = at;
    for (const l of this.#listeners) l(view, from, at);
  }

  #remove(name: string): void {
    const view = this.pods.get(name);
    if (!view) return;
    this.#counts[view.gate ?? 'none']--;
    this.pods.delete(name);
  }

  #checkWaiters(at: number): void {
    if (this.#waiters.length === 0) return;
    const done = this.#waiters.filter((w) => w.check());
    if (done.length === 0) return;
    this.#waiters = this.#waiters.filter((w) => !done.includes(w));
    for (const w of done) w.resolve(at);
  }
}

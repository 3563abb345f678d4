// Fair sharing of the scheduler's probe slots: between namespaces first, then between the
// policies of one namespace. Pure bookkeeping, no clock and no I/O; src/probes/scheduler.ts
// drives it.
//
// Which waiting run starts next: the one from the namespace with the fewest runs in flight,
// round robin among namespaces with equal counts; inside that namespace, the same rule between
// its policies; inside a policy, first in first out. Plain round robin and deficit round robin
// both hand a freed slot to whoever's turn it is; they count starts, but a probe's cost is how
// long it holds its slot, unknown until it ends (a target that accepts and never answers holds
// it for the whole timeout). So a tenant whose runs never end would win a slot on every turn
// and keep it, until it held them all. Fewest-in-flight-first gives each freed slot to the
// waiting tenant furthest below its share (max-min fairness); with equal counts it is round
// robin. It is also the per-namespace cap while others wait: a namespace's runs wait as long as
// a namespace with fewer runs in flight is waiting. Inside a policy, urgent items (a new pod's
// first probe, a target mid-transition: src/safety/overload.ts) go before the others; between
// tenants fairness decides, so one tenant's burst of new pods cannot starve another's probes.
//
// That rule only acts when a slot frees, which for a tarpit takes a whole timeout. Two limits
// keep slots free before anyone needs them, so that a victim's due run starts at once:
// - a cap: while any other namespace has targets, one namespace holds at most
//   capacity − reserve slots (reserve = a quarter of the slots, at least one when capacity ≥ 2);
// - a reservation: a slot stays free for each namespace that has targets and nothing in flight,
//   at most `reserve` of them, so a namespace's first run never waits for another namespace,
//   however many namespaces hang.
// Both cost at most a quarter of the slots, and only while slots run short (healthy probes
// finish in milliseconds and hold a handful).
//
// Cost: an indexed binary heap of waiting namespaces and one of waiting policies per namespace,
// keyed by (runs in flight, last served); O(log n) per push, take and release, and a FIFO per
// policy. Stale items (targets removed or replaced since they queued) are dropped when reached.

/** Who a target belongs to, for fair sharing. */
export interface Tenant {
  namespace: string;
  policy: string;
}

/** Tenant of targets that do not name one: all of them share one namespace and one policy. */
export const SHARED_TENANT: Tenant = { namespace: '', policy: '' };

interface Ranked {
  inFlight: number;
  /** When last served (or created): ties on inFlight go to the longest unserved, i.e. round robin. */
  served: number;
  /** Position in the heap it waits in, −1 when not waiting. */
  heapIndex: number;
}

interface NamespaceRec extends Ranked {
  name: string;
  /** Targets attached with this namespace. */
  targets: number;
  policies: Map<string, PolicyRec>;
  waiting: IndexedHeap<PolicyRec>;
}

interface PolicyRec extends Ranked {
  name: string;
  ns: NamespaceRec;
  targets: number;
  fifo: unknown[];
  head: number;
  /** Urgent items, taken before fifo's. */
  urgent: unknown[];
  urgentHead: number;
}

/** A tenant's handle: from `attach`, given back to `push`, `take`'s result, `release` and `detach`. */
export type TenantHandle = { readonly __tenant: unique symbol };

export interface Taken<T> {
  item: T;
  /** Pass to `release` when the run ends. */
  handle: TenantHandle;
}

/** Queues runs per tenant and decides which may start; see the module comment. */
export class FairQueue<T> {
  readonly #capacity: number;
  readonly #reserve: number;
  readonly #namespaces = new Map<string, NamespaceRec>();
  readonly #waiting = new IndexedHeap<NamespaceRec>();
  #inFlight = 0;
  #served = 0;
  /** Namespaces with targets. */
  #withTargets = 0;
  /** Namespaces with targets and nothing in flight: each may claim a reserved slot. */
  #idle = 0;

  constructor(capacity: number) {
    if (!(capacity >= 1)) throw new RangeError(`capacity must be >= 1, got ${capacity}`);
    this.#capacity = Math.floor(capacity);
    this.#reserve = this.#capacity >= 2 ? Math.max(1, Math.floor(this.#capacity / 4)) : 0;
  }

  /** Runs in flight across all tenants. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Slots kept back by the cap and the reservation (see the module comment). */
  get reserve(): number {
    return this.#reserve;
  }

  /** Tenants currently tracked (a tenant is forgotten once it has no targets, runs or queue). */
  size(): { namespaces: number; policies: number } {
    let policies = 0;
    for (const ns of this.#namespaces.values()) policies += ns.policies.size;
    return { namespaces: this.#namespaces.size, policies };
  }

  /** Runs in flight for one namespace, or for one policy of it. */
  inFlightOf(namespace: string, policy?: string): number {
    const ns = this.#namespaces.get(namespace);
    if (policy === undefined) return ns?.inFlight ?? 0;
    return ns?.policies.get(policy)?.inFlight ?? 0;
  }

  /** Counts one more target of `tenant` (absent: the shared tenant); call `detach` when it goes. */
  attach(tenant: Tenant = SHARED_TENANT): TenantHandle {
    let ns = this.#namespaces.get(tenant.namespace);
    if (!ns) {
      ns = {
        name: tenant.namespace,
        targets: 0,
        inFlight: 0,
        served: this.#served++,
        heapIndex: -1,
        policies: new Map(),
        waiting: new IndexedHeap(),
      };
      this.#namespaces.set(ns.name, ns);
    }
    let policy = ns.policies.get(tenant.policy);
    if (!policy) {
      policy = {
        name: tenant.policy,
        ns,
        targets: 0,
        inFlight: 0,
        served: this.#served++,
        heapIndex: -1,
        fifo: [],
        head: 0,
        urgent: [],
        urgentHead: 0,
      };
      ns.policies.set(policy.name, policy);
    }
    policy.targets++;
    if (ns.targets++ === 0) {
      this.#withTargets++;
      if (ns.inFlight === 0) this.#idle++;
    }
    return policy as unknown as TenantHandle;
  }

  /** Undoes one `attach`. Queued items stay until `take` reaches them (and finds them stale). */
  detach(handle: TenantHandle): void {
    const policy = rec(handle);
    const ns = policy.ns;
    if (policy.targets <= 0) throw new Error(`detach of ${ns.name}/${policy.name} without a matching attach`);
    policy.targets--;
    if (--ns.targets === 0) {
      this.#withTargets--;
      if (ns.inFlight === 0) this.#idle--;
    }
    this.#forgetIfUnused(policy);
  }

  /** Queues an item behind the tenant's earlier ones (urgent: behind its earlier urgent ones only). */
  push(handle: TenantHandle, item: T, urgent = false): void {
    const policy = rec(handle);
    if (urgent) policy.urgent.push(item);
    else policy.fifo.push(item);
    if (policy.heapIndex < 0) policy.ns.waiting.push(policy);
    if (policy.ns.heapIndex < 0) this.#waiting.push(policy.ns);
  }

  /**
   * Takes the next item that may start now and counts it in flight, dropping items that
   * `isLive` rejects on the way; undefined when no queued item may start.
   */
  take(isLive: (item: T) => boolean): Taken<T> | undefined {
    for (;;) {
      // When the fewest-first namespace may not start, no waiting one may: the reservation holds
      // back only namespaces with runs in flight, and the cap at most one namespace.
      const ns = this.#waiting.peek();
      if (!ns || !this.#mayStart(ns)) return undefined;
      const policy = ns.waiting.peek()!;
      const item = shift(policy) as T;
      this.#afterShift(policy);
      if (!isLive(item)) continue;
      this.#started(policy);
      return { item, handle: policy as unknown as TenantHandle };
    }
  }

  /** A run taken with `take` ended: its slot is free again. */
  release(handle: TenantHandle): void {
    const policy = rec(handle);
    const ns = policy.ns;
    if (policy.inFlight <= 0) throw new Error(`release of ${ns.name}/${policy.name} with nothing in flight`);
    this.#inFlight--;
    policy.inFlight--;
    if (--ns.inFlight === 0 && ns.targets > 0) this.#idle++;
    if (policy.heapIndex >= 0) ns.waiting.update(policy);
    if (ns.heapIndex >= 0) this.#waiting.update(ns);
    this.#forgetIfUnused(policy);
  }

  #mayStart(ns: NamespaceRec): boolean {
    const free = this.#capacity - this.#inFlight;
    if (free < 1) return false;
    if (ns.inFlight === 0) return true; // a namespace's first run may use a reserved slot
    if (free - 1 < Math.min(this.#idle, this.#reserve)) return false;
    const others = this.#withTargets - (ns.targets > 0 ? 1 : 0);
    return others === 0 || ns.inFlight < this.#capacity - this.#reserve;
  }

  #started(policy: PolicyRec): void {
    const ns = policy.ns;
    this.#inFlight++;
    policy.inFlight++;
    policy.served = this.#served++;
    if (ns.inFlight++ === 0 && ns.targets > 0) this.#idle--;
    ns.served = this.#served++;
    if (policy.heapIndex >= 0) ns.waiting.update(policy);
    if (ns.heapIndex >= 0) this.#waiting.update(ns);
  }

  // After the head of a policy's FIFO was taken: leave the heaps when empty, compact when half spent.
  #afterShift(policy: PolicyRec): void {
    if (policy.urgentHead === policy.urgent.length && policy.urgentHead > 0) {
      policy.urgent = [];
      policy.urgentHead = 0;
    } else if (policy.urgentHead > 1024 && policy.urgentHead * 2 > policy.urgent.length) {
      policy.urgent = policy.urgent.slice(policy.urgentHead);
      policy.urgentHead = 0;
    }
    if (policy.head === policy.fifo.length && policy.urgent.length === 0) {
      policy.fifo = [];
      policy.head = 0;
      policy.ns.waiting.remove(policy);
      if (policy.ns.waiting.size === 0) this.#waiting.remove(policy.ns);
      this.#forgetIfUnused(policy);
    } else if (policy.head > 1024 && policy.head * 2 > policy.fifo.length) {
      policy.fifo = policy.fifo.slice(policy.head);
      policy.head = 0;
    }
  }

  #forgetIfUnused(policy: PolicyRec): void {
    if (policy.targets > 0 || policy.inFlight > 0 || policy.heapIndex >= 0) return;
    const ns = policy.ns;
    ns.policies.delete(policy.name);
    if (ns.policies.size === 0) this.#namespaces.delete(ns.name);
  }
}

/** Takes a policy's next item: its urgent ones first. */
function shift(policy: PolicyRec): unknown {
  if (policy.urgentHead < policy.urgent.length) {
    const item = policy.urgent[policy.urgentHead];
    policy.urgent[policy.urgentHead++] = undefined;
    return item;
  }
  const item = policy.fifo[policy.head];
  policy.fifo[policy.head++] = undefined;
  return item;
}

function rec(handle: TenantHandle): PolicyRec {
  return handle as unknown as PolicyRec;
}

/** A binary min-heap ordered by (inFlight, served) whose items know their index, so a changed key is re-sifted in O(log n). */
class IndexedHeap<T extends Ranked> {
  readonly #items: T[] = [];

  get size(): number {
    return this.#items.length;
  }

  peek(): T | undefined {
    return this.#items[0];
  }

  push(item: T): void {
    item.heapIndex = this.#items.length;
    this.#items.push(item);
    this.#up(item.heapIndex);
  }

  remove(item: T): void {
    const i = item.heapIndex;
    if (i < 0) return;
    const last = this.#items.pop()!;
    item.heapIndex = -1;
    if (last === item) return;
    this.#items[i] = last;
    last.heapIndex = i;
    this.#down(this.#up(i));
  }

  /** Restores the order after the item's inFlight or served changed. */
  update(item: T): void {
    if (item.heapIndex >= 0) this.#down(this.#up(item.heapIndex));
  }

  #up(i: number): number {
    const a = this.#items;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(a[i]!, a[parent]!)) break;
      this.#swap(i, parent);
      i = parent;
    }
    return i;
  }

  #down(i: number): void {
    const a = this.#items;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < a.length && before(a[l]!, a[m]!)) m = l;
      if (r < a.length && before(a[r]!, a[m]!)) m = r;
      if (m === i) return;
      this.#swap(i, m);
      i = m;
    }
  }

  #swap(i: number, j: number): void {
    const a = this.#items;
    const x = a[i]!;
    a[i] = a[j]!;
    a[j] = x;
    a[i]!.heapIndex = i;
    x.heapIndex = j;
  }
}

function before(x: Ranked, y: Ranked): boolean {
  return x.inFlight < y.inFlight || (x.inFlight === y.inFlight && x.served < y.served);
}

// Runs every target once per period, at a phase fixed by its key, under a global concurrency
// limit. One timer for all targets, pointed at the top of a min-heap of due times and deadlines:
// at 10,000 targets that is one armed timer and O(log n) per event, instead of 10,000 Node
// timers re-armed every period. Due runs that find no free slot wait in a fair queue
// (src/probes/fair-queue.ts): slots are shared between namespaces, then policies, so targets
// that accept and never answer cannot take every slot; O(log n) per event as well.
// Under overload (src/safety/overload.ts) the periods of steady targets are stretched by one
// factor, urgent runs (a target that is not steady) go before steady ones of the same policy,
// and starts wait while the caller's `yieldTo` says writes need the loop.

import { contain, type ProbeCrash } from '../safety/containment.ts';
import { FairQueue, type Tenant, type TenantHandle } from './fair-queue.ts';
import { MinHeap } from './min-heap.ts';
import type { ProbeResult } from './types.ts';

/** Time source and timer functions; src/runtime/clock.ts's Clock (real or fake) fits. */
export interface SchedulerClock {
  /** Milliseconds since the epoch. */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface ScheduledTarget {
  /** Unique key, e.g. "namespace/policy#podUID"; it also fixes the target's phase. */
  key: string;
  periodMs: number;
  /** The longest one run may take by its own deadlines; past it (plus a grace) the run is abandoned. */
  timeoutMs: number;
  /** Runs one probe; the signal aborts when the target is removed, replaced, or overruns. */
  run: (signal: AbortSignal) => Promise<ProbeResult>;
  /** First run as soon as possible (a pod that just got its IP) instead of at the key's phase. */
  immediate?: boolean;
  /**
   * From when another replica may have stopped probing this target (a bucket taken over,
   * docs/sharding.md): if a slot of its grid fell between then and now, the first run is at
   * once, so the slot a handover spanned is not a whole period lost. Absent: on the grid.
   */
  missedSince?: number;
  /** Whose target this is, for fair sharing of slots; targets without one share one tenant. */
  tenant?: Tenant;
  /**
   * Whether the target is settled, asked when a run is due and when it ends: only a steady target
   * runs at the stretched period, and a target that is not steady queues before steady ones.
   * Absent: always steady.
   */
  steady?: () => boolean;
}

export interface RunTiming {
  /** When the run was due on the target's phase grid. */
  plannedAt: number;
  /** When it actually started (later than planned when the concurrency limit queued it). */
  startedAt: number;
  finishedAt: number;
  /** startedAt − plannedAt. */
  lateMs: number;
  /** Due times skipped since the last delivery because the previous run had not finished. */
  skipped: number;
}

export interface SchedulerOptions {
  clock: SchedulerClock;
  /**
   * Maximum probes in flight across all targets; excess due runs wait, shared fairly between
   * tenants (FIFO within one). A quarter of it is held back from any one namespace while others
   * have targets (see src/probes/fair-queue.ts).
   */
  concurrency: number;
  onResult: (key: string, result: ProbeResult, timing: RunTiming) => void;
  /** A run still pending this long after its timeout is abandoned and reported as a timeout. */
  backstopGraceMs?: number;
  /** While it returns true no run starts (writes before probes); asked again every YIELD_RECHECK_MS. */
  yieldTo?: () => boolean;
  /**
   * A run crashed (threw, rejected, resolved with a non-result) and was reported as a failure, or
   * onResult threw for it (kind 'result-handler'); for a metric and a log line.
   */
  onCrash?: (key: string, crash: ProbeCrash) => void;
}

/** How often a yielding scheduler looks again whether it may start runs. */
export const YIELD_RECHECK_MS = 10;

interface Run {
  key: string;
  gen: number;
  tenant: TenantHandle;
  plannedAt: number;
  startedAt: number;
  abort: AbortController;
  settled: boolean;
}

interface Entry {
  target: ScheduledTarget;
  gen: number;
  /** seq of the one due event in the heap that is still valid for this entry. */
  dueSeq: number;
  queued: boolean;
  run: Run | undefined;
  skipped: number;
  /** phaseOf(key, period), kept so a run's rescheduling does not hash the key again. */
  phase: number;
  /** The same for the stretched period it was last computed for. */
  stretched: { periodMs: number; phase: number } | undefined;
  /** When the entry's valid due event is. */
  dueAt: number;
  /** The due time of its last run (a due time skipped for a run in flight is not one). */
  lastDueAt: number | undefined;
  tenant: TenantHandle;
}

interface Event {
  at: number;
  seq: number;
  key: string;
  kind: 'due' | 'deadline';
  run?: Run;
}

interface QueuedRun {
  key: string;
  gen: number;
  plannedAt: number;
}

/** Schedules probe runs for a changing set of targets; see the module comment. */
export class ProbeScheduler {
  readonly #clock: SchedulerClock;
  readonly #concurrency: number;
  readonly #onResult: SchedulerOptions['onResult'];
  readonly #graceMs: number;
  readonly #entries = new Map<string, Entry>();
  readonly #heap = new MinHeap<Event>();
  #fair: FairQueue<QueuedRun>;
  /** Entries with `queued` set. */
  #queued = 0;
  #seq = 0;
  #inFlight = 0;
  #timer: unknown;
  #timerAt: number | undefined;
  #stopped = false;
  readonly #yieldTo: (() => boolean) | undefined;
  readonly #onCrash: SchedulerOptions['onCrash'];
  #yieldTimer: unknown;
  #stretch = 1;
  /** Σ 1000 / periodMs over the entries: runs per second their own periods ask for. */
  #demand = 0;
  #completed = 0;

  constructor(options: SchedulerOptions) {
    this.#clock = options.clock;
    this.#concurrency = Math.max(1, options.concurrency);
    this.#fair = new FairQueue(this.#concurrency);
    this.#onResult = options.onResult;
    this.#graceMs = options.backstopGraceMs ?? 1000;
    this.#yieldTo = options.yieldTo;
    this.#onCrash = options.onCrash;
  }

  /**
   * Adds a target or replaces its definition. A replaced target keeps its phase unless the
   * period changed; a run of the old definition is aborted and its result dropped, and no new
   * run starts before it has finished (runs of one key never overlap).
   */
  upsert(target: ScheduledTarget): void {
    if (this.#stopped) return;
    const now = this.#clock.now();
    const existing = this.#entries.get(target.key);
    if (!existing) {
      const phase = phaseOf(target.key, target.periodMs);
      const tenant = this.#fair.attach(target.tenant);
      const entry: Entry = {
        target,
        gen: 0,
        dueSeq: -1,
        queued: false,
        run: undefined,
        skipped: 0,
        phase,
        stretched: undefined,
        dueAt: now,
        lastDueAt: undefined,
        tenant,
      };
      this.#entries.set(target.key, entry);
      this.#demand += 1000 / target.periodMs;
      const atOnce = target.immediate || missedSlot(now, target.periodMs, phase, target.missedSince);
      this.#scheduleDue(entry, atOnce ? now : nextOnGrid(now, target.periodMs, phase));
    } else {
      const periodChanged = existing.target.periodMs !== target.periodMs;
      if (!sameTenant(existing.target.tenant, target.tenant)) {
        this.#fair.detach(existing.tenant);
        existing.tenant = this.#fair.attach(target.tenant);
      }
      this.#demand += 1000 / target.periodMs - 1000 / existing.target.periodMs;
      existing.target = target;
      existing.gen++;
      this.#unqueue(existing);
      existing.run?.abort.abort();
      if (periodChanged) existing.phase = phaseOf(target.key, target.periodMs);
      if (periodChanged || target.immediate) {
        const at = target.immediate ? now : nextOnGrid(now, target.periodMs, existing.phase);
        this.#scheduleDue(existing, at);
      }
    }
    this.#arm();
  }

  /** Forgets a target: its pending run never starts and an in-flight result is never delivered. */
  remove(key: string): void {
    const entry = this.#entries.get(key);
    if (!entry) return;
    this.#entries.delete(key);
    this.#demand -= 1000 / entry.target.periodMs;
    this.#unqueue(entry);
    this.#fair.detach(entry.tenant);
    entry.run?.abort.abort();
  }

  /** Stops everything: clears the timer, aborts runs in flight, delivers nothing more. */
  stop(): void {
    this.#stopped = true;
    if (this.#timerAt !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timerAt = undefined;
    if (this.#yieldTimer !== undefined) this.#clock.clearTimeout(this.#yieldTimer);
    this.#yieldTimer = undefined;
    for (const entry of this.#entries.values()) entry.run?.abort.abort();
    this.#entries.clear();
    this.#heap.clear();
    this.#fair = new FairQueue(this.#concurrency);
    this.#queued = 0;
  }

  /**
   * Current load, for metrics and the overload governor: `demandPerSecond` is what the targets'
   * own periods ask for, `completed` counts runs that ended since the scheduler was created.
   */
  stats(): { targets: number; inFlight: number; queued: number; demandPerSecond: number; completed: number } {
    return {
      targets: this.#entries.size,
      inFlight: this.#inFlight,
      queued: this.#queued,
      demandPerSecond: this.#entries.size === 0 ? 0 : this.#demand,
      completed: this.#completed,
    };
  }

  /** The factor steady targets' periods are stretched by now. */
  get stretch(): number {
    return this.#stretch;
  }

  /**
   * Stretches the periods of steady targets by `factor` (≥ 1) from their next run on. When the
   * factor falls, runs already planned further out than the new period are brought forward, so a
   * recovery does not wait out a whole stretched period, but to no earlier than the slot after
   * their last run, as at the new period. Brought to the first slot from now instead, a target
   * that had just run ran again within seconds: a stretch swinging under load (5 → 10 → 1 at
   * 150,000 pods, bench/RESULTS.md) made 1.6 probes per target and period, a load that
   * stretched it again.
   */
  setStretch(factor: number): void {
    const next = Math.max(1, Number.isFinite(factor) ? factor : 1);
    const fell = next < this.#stretch;
    this.#stretch = next;
    if (!fell || this.#stopped) return;
    const now = this.#clock.now();
    for (const entry of this.#entries.values()) {
      const from = Math.max(now - this.#periodOf(entry) / 2, entry.lastDueAt ?? Number.NEGATIVE_INFINITY);
      const at = this.#nextDue(entry, from, now);
      if (at < entry.dueAt) this.#scheduleDue(entry, at);
    }
    this.#arm();
  }

  /** Probes in flight for one namespace, or one policy of it (targets without a tenant: ''). */
  inFlightOf(namespace: string, policy?: string): number {
    return this.#fair.inFlightOf(namespace, policy);
  }

  // The entry's queued run (if any) goes stale: the fair queue drops it when it reaches it.
  #unqueue(entry: Entry): void {
    if (!entry.queued) return;
    entry.queued = false;
    this.#queued--;
  }

  #scheduleDue(entry: Entry, at: number): void {
    const seq = this.#seq++;
    entry.dueSeq = seq;
    entry.dueAt = at;
    this.#heap.push({ at, seq, key: entry.target.key, kind: 'due' });
  }

  #arm(): void {
    if (this.#stopped) return;
    const top = this.#heap.peek();
    if (top === undefined) {
      if (this.#timerAt !== undefined) this.#clock.clearTimeout(this.#timer);
      this.#timerAt = undefined;
      return;
    }
    if (this.#timerAt !== undefined && this.#timerAt <= top.at) return;
    if (this.#timerAt !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timerAt = top.at;
    this.#timer = this.#clock.setTimeout(() => this.#fire(), Math.max(0, top.at - this.#clock.now()));
  }

  #fire(): void {
    this.#timerAt = undefined;
    const now = this.#clock.now();
    for (let ev = this.#heap.peek(); ev !== undefined && ev.at <= now; ev = this.#heap.peek()) {
      this.#heap.pop();
      if (ev.kind === 'due') this.#onDue(ev, now);
      else if (ev.run) this.#onDeadline(ev.run);
      if (this.#stopped) return;
    }
    this.#arm();
  }

  #onDue(ev: Event, now: number): void {
    const entry = this.#entries.get(ev.key);
    if (!entry || entry.dueSeq !== ev.seq) return; // removed, or rescheduled since
    this.#scheduleDue(entry, this.#nextDue(entry, ev.at, now));
    if (entry.run || entry.queued) {
      entry.skipped++; // never overlap runs of one target (the kubelet worker is one goroutine per probe)
      return;
    }
    entry.lastDueAt = ev.at;
    // Through the fair queue even when slots are free: which run may start is its decision.
    entry.queued = true;
    this.#queued++;
    const urgent = entry.target.steady?.() === false;
    this.#fair.push(entry.tenant, { key: ev.key, gen: entry.gen, plannedAt: ev.at }, urgent);
    this.#pump();
  }

  /** The entry's period now: its own, times the stretch factor while it is steady. */
  #periodOf(entry: Entry): number {
    const own = entry.target.periodMs;
    if (this.#stretch === 1 || entry.target.steady?.() === false) return own;
    return own * this.#stretch;
  }

  // Next slot on the key's grid, at least half a period after `from` (the due time just run):
  // after an immediate first run (a new pod) the target goes back to its phase. Staying on
  // from + period kept every pod that started together in one burst forever: 5,000 probes at
  // once every period after a mass start, during which nothing else ran (bench/: time to gate
  // p99 1.5 s). Slots already in the past (a stalled event loop) are skipped. A stretched period
  // has a grid of its own, with the key's phase within it.
  #nextDue(entry: Entry, from: number, now: number): number {
    const period = this.#periodOf(entry);
    let phase = entry.phase;
    if (period !== entry.target.periodMs) {
      if (entry.stretched?.periodMs !== period) {
        entry.stretched = { periodMs: period, phase: phaseOf(entry.target.key, period) };
      }
      phase = entry.stretched.phase;
    }
    const next = nextOnGrid(from + period / 2, period, phase);
    return next > now ? next : nextOnGrid(now + 1, period, phase);
  }

  #start(entry: Entry, plannedAt: number, tenant: TenantHandle): void {
    const now = this.#clock.now();
    const run: Run = {
      key: entry.target.key,
      gen: entry.gen,
      tenant,
      plannedAt,
      startedAt: now,
      abort: new AbortController(),
      settled: false,
    };
    entry.run = run;
    this.#unqueue(entry);
    this.#inFlight++;
    this.#heap.push({
      at: now + entry.target.timeoutMs + this.#graceMs,
      seq: this.#seq++,
      key: run.key,
      kind: 'deadline',
      run,
    });
    // A run that throws, rejects or resolves with a non-result becomes a failure result
    // (src/safety/containment.ts): one target's crash neither loses its slot nor reaches the process.
    void contain(
      () => entry.target.run(run.abort.signal),
      (crash) => this.#onCrash?.(run.key, crash),
      () => this.#clock.now() - run.startedAt,
    ).then((result) => this.#complete(run, result));
  }

  // The probe's own deadline should always win; this catches a probe that never settles, so
  // its concurrency slot is not lost forever.
  #onDeadline(run: Run): void {
    if (run.settled) return;
    run.abort.abort();
    this.#complete(run, {
      outcome: 'timeout',
      couldNotLook: true,
      message: `probe did not finish within its timeout (+${this.#graceMs}ms); abandoned`,
      durationMs: this.#clock.now() - run.startedAt,
    });
  }

  #complete(run: Run, result: ProbeResult): void {
    if (run.settled || this.#stopped) return;
    run.settled = true;
    this.#inFlight--;
    this.#completed++;
    this.#fair.release(run.tenant);
    const entry = this.#entries.get(run.key);
    if (entry?.run === run) {
      entry.run = undefined;
      if (entry.gen === run.gen) {
        const finishedAt = this.#clock.now();
        const skipped = entry.skipped;
        entry.skipped = 0;
        this.#deliver(run.key, result, {
          plannedAt: run.plannedAt,
          startedAt: run.startedAt,
          finishedAt,
          lateMs: run.startedAt - run.plannedAt,
          skipped,
        });
        this.#unstretch(entry, run.plannedAt, finishedAt);
      }
    }
    this.#pump();
    this.#arm();
  }

  // A throwing onResult must not skip the pump and re-arm that follow it (the queue would stall
  // until the next timer), nor surface as an unhandled rejection of the run's promise.
  #deliver(key: string, result: ProbeResult, timing: RunTiming): void {
    try {
      this.#onResult(key, result, timing);
    } catch (error) {
      try {
        this.#onCrash?.(key, { kind: 'result-handler', error });
      } catch {
        // best effort, as in src/safety/containment.ts
      }
    }
  }

  // A run that left its target unsettled (its first failure, say) brings the next run back from
  // the stretched period to the target's own: thresholds count probes at the policy's period.
  #unstretch(entry: Entry, plannedAt: number, now: number): void {
    if (this.#stretch === 1 || this.#entries.get(entry.target.key) !== entry) return;
    const at = this.#nextDue(entry, plannedAt, now);
    if (at < entry.dueAt) this.#scheduleDue(entry, at);
  }

  // Starts queued runs while the fair queue lets one start; each pass starts one or drops a stale
  // one. While the caller yields to writes, nothing starts; a timer looks again shortly.
  #pump(): void {
    if (this.#yieldTo?.() && !this.#stopped) {
      this.#yieldTimer ??= this.#clock.setTimeout(() => {
        this.#yieldTimer = undefined;
        this.#pump();
      }, YIELD_RECHECK_MS);
      return;
    }
    while (!this.#stopped) {
      const next = this.#fair.take(this.#isLive);
      if (!next) return;
      this.#start(this.#entries.get(next.item.key)!, next.item.plannedAt, next.handle);
    }
  }

  // A queued run is stale once its target was removed, replaced or started since it queued.
  readonly #isLive = (q: QueuedRun): boolean => {
    const entry = this.#entries.get(q.key);
    return entry?.queued === true && entry.gen === q.gen && !entry.run;
  };
}

function sameTenant(a: Tenant | undefined, b: Tenant | undefined): boolean {
  return a === b || (a?.namespace === b?.namespace && a?.policy === b?.policy);
}

/** The key's offset within the period: FNV-1a of the key, so phases survive restarts. */
export function phaseOf(key: string, periodMs: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % Math.max(1, Math.floor(periodMs));
}

/**
 * Whether a slot of the grid fell in [since, now]: the last slot at or before now is not older
 * than `since`. False without `since`.
 */
export function missedSlot(now: number, periodMs: number, phase: number, since: number | undefined): boolean {
  if (since === undefined) return false;
  const next = nextOnGrid(now, periodMs, phase);
  return (next === now ? now : next - periodMs) >= since;
}

/** The first time ≥ now whose offset within the period (on the epoch grid) equals `phase`. */
export function nextOnGrid(now: number, periodMs: number, phase: number): number {
  const into = (((now - phase) % periodMs) + periodMs) % periodMs;
  return into === 0 ? now : now - into + periodMs;
}

// Runs every target once per period, at a phase fixed by its key, under a global concurrency
// limit. One timer for all targets, pointed at the top of a min-heap of due times and deadlines:
// at 10,000 targets that is one armed timer and O(log n) per event, instead of 10,000 Node
// timers re-armed every period.
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
  timeoutMs: number;
  /** Runs one probe; the signal aborts when the target is removed, replaced, or overruns. */
  run: (signal: AbortSignal) => Promise<ProbeResult>;
  /** First run as soon as possible (a pod that just got its IP) instead of at the key's phase. */
  immediate?: boolean;
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
  /** Maximum probes in flight across all targets; excess due runs wait in FIFO order. */
  concurrency: number;
  onResult: (key: string, result: ProbeResult, timing: RunTiming) => void;
  /** A run still pending this long after its timeout is abandoned and reported as a timeout. */
  backstopGraceMs?: number;
}

interface Run {
  key: string;
  gen: number;
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
  #queue: QueuedRun[] = [];
  #queueHead = 0;
  #seq = 0;
  #inFlight = 0;
  #timer: unknown;
  #timerAt: number | undefined;
  #stopped = false;

  constructor(options: SchedulerOptions) {
    this.#clock = options.clock;
    this.#concurrency = Math.max(1, options.concurrency);
    this.#onResult = options.onResult;
    this.#graceMs = options.backstopGraceMs ?? 1000;
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
      const entry: Entry = { target, gen: 0, dueSeq: -1, queued: false, run: undefined, skipped: 0, phase };
      this.#entries.set(target.key, entry);
      this.#scheduleDue(entry, target.immediate ? now : nextOnGrid(now, target.periodMs, phase));
    } else {
      const periodChanged = existing.target.periodMs !== target.periodMs;
      existing.target = target;
      existing.gen++;
      existing.queued = false;
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
    entry.run?.abort.abort();
  }

  /** Stops everything: clears the timer, aborts runs in flight, delivers nothing more. */
  stop(): void {
    this.#stopped = true;
    if (this.#timerAt !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timerAt = undefined;
    for (const entry of this.#entries.values()) entry.run?.abort.abort();
    this.#entries.clear();
    this.#heap.clear();
    this.#queue = [];
    this.#queueHead = 0;
  }

  /** Current load, for metrics. */
  stats(): { targets: number; inFlight: number; queued: number } {
    return { targets: this.#entries.size, inFlight: this.#inFlight, queued: this.#queue.length - this.#queueHead };
  }

  #scheduleDue(entry: Entry, at: number): void {
    const seq = this.#seq++;
    entry.dueSeq = seq;
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
    const period = entry.target.periodMs;
    // Next slot on the key's grid, at least half a period on: after an immediate first run (a
    // new pod) the target goes back to its phase. Staying on ev.at + period kept every pod that
    // started together in one burst forever: 5,000 probes at once every period after a mass
    // start, during which nothing else ran (bench/: time to gate p99 1.5 s). Slots already in
    // the past (a stalled event loop) are skipped.
    let next = nextOnGrid(ev.at + period / 2, period, entry.phase);
    if (next <= now) next = nextOnGrid(now + 1, period, entry.phase);
    this.#scheduleDue(entry, next);
    if (entry.run || entry.queued) {
      entry.skipped++; // never overlap runs of one target (the kubelet worker is one goroutine per probe)
      return;
    }
    if (this.#inFlight < this.#concurrency) {
      this.#start(entry, ev.at);
    } else {
      entry.queued = true;
      this.#queue.push({ key: ev.key, gen: entry.gen, plannedAt: ev.at });
    }
  }

  #start(entry: Entry, plannedAt: number): void {
    const now = this.#clock.now();
    const run: Run = {
      key: entry.target.key,
      gen: entry.gen,
      plannedAt,
      startedAt: now,
      abort: new AbortController(),
      settled: false,
    };
    entry.run = run;
    entry.queued = false;
    this.#inFlight++;
    this.#heap.push({
      at: now + entry.target.timeoutMs + this.#graceMs,
      seq: this.#seq++,
      key: run.key,
      kind: 'deadline',
      run,
    });
    let promise: Promise<ProbeResult>;
    try {
      promise = entry.target.run(run.abort.signal);
    } catch (err) {
      promise = Promise.reject(err);
    }
    promise.then(
      (result) => this.#complete(run, result),
      (err: unknown) =>
        this.#complete(run, {
          outcome: 'failure',
          couldNotLook: true,
          message: `probe crashed: ${err instanceof Error ? err.message : String(err)}`,
          durationMs: this.#clock.now() - run.startedAt,
        }),
    );
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
    const entry = this.#entries.get(run.key);
    if (entry?.run === run) {
      entry.run = undefined;
      if (entry.gen === run.gen) {
        const finishedAt = this.#clock.now();
        const skipped = entry.skipped;
        entry.skipped = 0;
        this.#onResult(run.key, result, {
          plannedAt: run.plannedAt,
          startedAt: run.startedAt,
          finishedAt,
          lateMs: run.startedAt - run.plannedAt,
          skipped,
        });
      }
    }
    this.#pump();
    this.#arm();
  }

  #pump(): void {
    while (this.#inFlight < this.#concurrency && this.#queueHead < this.#queue.length && !this.#stopped) {
      const q = this.#queue[this.#queueHead++]!;
      const entry = this.#entries.get(q.key);
      if (entry?.queued && entry.gen === q.gen && !entry.run) this.#start(entry, q.plannedAt);
    }
    if (this.#queueHead > 1024 && this.#queueHead * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#queueHead);
      this.#queueHead = 0;
    }
  }
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

/** The first time ≥ now whose offset within the period (on the epoch grid) equals `phase`. */
export function nextOnGrid(now: number, periodMs: number, phase: number): number {
  const into = (((now - phase) % periodMs) + periodMs) % periodMs;
  return into === 0 ? now : now - into + periodMs;
}

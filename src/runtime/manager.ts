import { type Logger, pino } from 'pino';
import { type Clock, realClock, type TimerHandle } from './clock.ts';

// controller-runtime's Manager: it owns every long-running part of the operator, gives them one
// cancellation signal, starts caches first and controllers only once caches have synced (a
// controller reading a half-filled cache would "fix" objects it simply has not seen yet), and
// bounds shutdown with a grace period so SIGTERM always ends the process in time.
// Like controller-runtime's runnable groups, Runnables that need leader election (controllers,
// by default) start only once this process leads, stop when it stops leading, and on shutdown
// stop first: the lease is released only after they drained, then caches and the rest stop.

/** Something that runs until `signal` aborts, then cleans up and resolves. */
export interface Runnable {
  start(signal: AbortSignal): Promise<void>;
}

/** A Runnable that fills a cache; the Manager waits for it before starting controllers. */
export interface CacheRunnable extends Runnable {
  /** Resolves once the initial list is in the cache; rejects with `signal.reason` if aborted first. */
  waitForSync(signal: AbortSignal): Promise<void>;
  /** True once the initial list is in the cache. */
  hasSynced(): boolean;
}

export interface ManagerOptions {
  logger?: Logger;
  clock?: Clock;
  /** How long stop() waits for runnables to finish before giving up on them. Default 10 s. */
  gracePeriodMs?: number;
  /** start() fails if caches have not synced by then (e.g. missing RBAC). Default 2 min. */
  cacheSyncTimeoutMs?: number;
  /** Without it, Runnables that need leader election start as soon as caches synced. */
  leaderElection?: LeaderElection;
}

/** start() rejects with this when the caches did not sync within the timeout. */
export class CacheSyncTimeoutError extends Error {
  override readonly name = 'CacheSyncTimeoutError';
}

/** Leader election as the Manager runs it (src/kube/lease.ts's LeaderElector fits). */
export interface LeaderElection {
  /**
   * Campaigns until `signal` aborts (then releases the lease) or leadership is lost; calls
   * onStartedLeading and onStoppedLeading (each at most once per term).
   */
  run(signal: AbortSignal, hooks: { onStartedLeading(): void; onStoppedLeading(): void }): Promise<void>;
}

/**
 * start() rejects with this when runnables were still running once the grace period ran out
 * (as controller-runtime's Start fails "waiting for all runnables to end within grace period").
 */
export class GracePeriodExpiredError extends Error {
  override readonly name = 'GracePeriodExpiredError';
  /** Names of the runnables that had not returned. */
  readonly runnables: readonly string[];
  constructor(gracePeriodMs: number, runnables: readonly string[]) {
    super(`runnables still running after the ${gracePeriodMs} ms grace period: ${runnables.join(', ')}`);
    this.runnables = runnables;
  }
}

/** start() rejects with this when this process stopped leading before the manager was stopped. */
export class LeadershipLostError extends Error {
  override readonly name = 'LeadershipLostError';
}

export interface AddOptions {
  /** Run only while this process leads (default true, as controller-runtime's controllers). */
  needLeaderElection?: boolean;
}

/** The minimal process surface handleSignals needs, injectable for tests. */
export interface SignalSource {
  on(event: 'SIGTERM' | 'SIGINT', listener: () => void): unknown;
  off(event: 'SIGTERM' | 'SIGINT', listener: () => void): unknown;
}

interface Entry {
  name: string;
  runnable: Runnable;
  done?: Promise<void>;
  finished: boolean;
  needLeaderElection?: boolean;
}

/** Starts caches, then (once synced) the other Runnables, and stops them all with one signal. */
export class Manager {
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #graceMs: number;
  readonly #syncTimeoutMs: number;
  readonly #ac = new AbortController();
  /** Aborted as soon as stopping begins, whatever the cause (see `stopping`). */
  readonly #stoppingAc = new AbortController();
  /** Aborted when this process stops leading (or the manager stops): leader-only Runnables stop. */
  readonly #leading = new AbortController();
  /** Aborted once leader-only Runnables drained: the elector then releases the lease. */
  readonly #election = new AbortController();
  readonly #leaderElection: LeaderElection | undefined;
  #electionEntry: Entry | undefined;
  readonly #caches: Array<Entry & { runnable: CacheRunnable }> = [];
  readonly #runnables: Entry[] = [];
  #synced = false;
  #started = false;
  #stopping = false;
  #firstError: unknown;
  #requestStop: () => void = () => {};
  readonly #stopRequested: Promise<void>;
  #finished: Promise<void> | undefined;

  constructor(opts: ManagerOptions = {}) {
    this.#log = (opts.logger ?? pino({ level: 'silent' })).child({ component: 'manager' });
    this.#clock = opts.clock ?? realClock;
    this.#graceMs = opts.gracePeriodMs ?? 10_000;
    this.#syncTimeoutMs = opts.cacheSyncTimeoutMs ?? 120_000;
    this.#leaderElection = opts.leaderElection;
    this.#stopRequested = new Promise((resolve) => {
      this.#requestStop = () => {
        if (!this.#stoppingAc.signal.aborted) this.#stoppingAc.abort(new Error('manager stopping'));
        resolve();
      };
    });
  }

  /** The signal every Runnable receives; aborted when the manager stops. */
  get signal(): AbortSignal {
    return this.#ac.signal;
  }

  /**
   * Aborted as soon as the manager begins to stop (stop(), a signal, a failed runnable, lost
   * leadership), before anything drained: the moment the grace period starts.
   */
  get stopping(): AbortSignal {
    return this.#stoppingAc.signal;
  }

  /** Names of the runnables started and not yet returned (what a shutdown is still waiting for). */
  unfinished(): string[] {
    const all = [...this.#caches, ...this.#runnables, ...(this.#electionEntry ? [this.#electionEntry] : [])];
    return all.filter((e) => e.done && !e.finished).map((e) => e.name);
  }

  /** Registers a cache; caches start first and must sync before other Runnables start. */
  addCache(cache: CacheRunnable, name = `cache-${this.#caches.length}`): void {
    if (this.#started) throw new Error('cannot add a cache after the manager started');
    this.#caches.push({ name, runnable: cache, finished: false });
  }

  /**
   * Registers a Runnable (a controller, a server...) started once caches have synced and, unless
   * `needLeaderElection: false`, once this process leads.
   */
  add(runnable: Runnable, name = `runnable-${this.#runnables.length}`, opts: AddOptions = {}): void {
    if (this.#started) throw new Error('cannot add a runnable after the manager started');
    this.#runnables.push({ name, runnable, finished: false, needLeaderElection: opts.needLeaderElection ?? true });
  }

  /** True after every cache synced, and until stopping begins (this drives /readyz). */
  ready(): boolean {
    return this.#synced && !this.#stopping;
  }

  /**
   * Runs everything until stop() (or a Runnable fails, or caches do not sync in time); resolves
   * after a graceful shutdown, or rejects with the error that caused the stop, or with
   * GracePeriodExpiredError when runnables were still running once the grace period ran out.
   */
  start(): Promise<void> {
    if (this.#started) throw new Error('manager already started');
    this.#started = true;
    this.#finished = this.#run();
    return this.#finished;
  }

  /** Asks the manager to stop and resolves once it has (within the grace period). */
  async stop(): Promise<void> {
    this.#requestStop();
    if (!this.#finished) return;
    // The error, if any, is reported by start(); stop() only waits.
    await this.#finished.catch(() => {});
  }

  /**
   * Stops the manager on the first SIGTERM or SIGINT; a second one exits at once (as
   * controller-runtime does), for an operator stuck in shutdown. Returns a function that uninstalls.
   */
  handleSignals(
    source: SignalSource = process,
    exit: (code: number) => void = (code) => process.exit(code),
  ): () => void {
    let received = false;
    const onSignal = (): void => {
      if (received) {
        this.#log.warn('second signal received, exiting now');
        exit(1);
        return;
      }
      received = true;
      this.#log.info('signal received, shutting down');
      void this.stop();
    };
    source.on('SIGTERM', onSignal);
    source.on('SIGINT', onSignal);
    return () => {
      source.off('SIGTERM', onSignal);
      source.off('SIGINT', onSignal);
    };
  }

  async #run(): Promise<void> {
    const signal = this.#ac.signal;
    for (const entry of this.#caches) this.#launch(entry);

    const syncTimer: { handle?: TimerHandle } = {};
    const synced = await Promise.race([
      Promise.all(this.#caches.map((c) => c.runnable.waitForSync(signal))).then(
        () => 'synced' as const,
        (err: unknown) => {
          if (!signal.aborted) this.#fail(err);
          return 'failed' as const;
        },
      ),
      new Promise<'timeout'>((resolve) => {
        syncTimer.handle = this.#clock.setTimeout(() => resolve('timeout'), this.#syncTimeoutMs);
      }),
      this.#stopRequested.then(() => 'stopped' as const),
    ]);
    if (syncTimer.handle !== undefined) this.#clock.clearTimeout(syncTimer.handle);

    if (synced === 'synced') {
      this.#synced = true;
      this.#log.info({ caches: this.#caches.length }, 'caches synced, starting runnables');
      for (const entry of this.#runnables) if (!entry.needLeaderElection) this.#launch(entry);
      if (this.#leaderElection) this.#campaign(this.#leaderElection);
      else this.#startLeading();
    } else if (synced === 'timeout') {
      const pending = this.#caches.filter((c) => !c.runnable.hasSynced()).map((c) => c.name);
      this.#fail(new CacheSyncTimeoutError(`caches not synced after ${this.#syncTimeoutMs} ms: ${pending.join(', ')}`));
    }

    await this.#stopRequested;
    const drained = await this.#shutdown();
    if (this.#firstError !== undefined) throw this.#firstError;
    if (!drained) throw new GracePeriodExpiredError(this.#graceMs, this.unfinished());
  }

  #campaign(election: LeaderElection): void {
    const entry: Entry = { name: 'leader-election', finished: false, runnable: { start: () => Promise.resolve() } };
    entry.runnable = {
      start: (signal) =>
        election.run(signal, {
          onStartedLeading: () => this.#startLeading(),
          onStoppedLeading: () => {
            this.#leading.abort(new LeadershipLostError('stopped leading'));
            // As controller-runtime does: a replica that lost its lease exits, and its Deployment
            // restarts it as a clean standby.
            if (!this.#stopping) this.#fail(new LeadershipLostError('leader election lost'), entry.name);
          },
        }),
    };
    this.#electionEntry = entry;
    this.#launch(entry, this.#election.signal);
  }

  #startLeading(): void {
    if (this.#stopping || this.#leading.signal.aborted) return;
    this.#log.info('leading: starting leader-only runnables');
    for (const entry of this.#runnables) if (entry.needLeaderElection) this.#launch(entry, this.#leading.signal);
  }

  #launch(entry: Entry, signal: AbortSignal = this.#ac.signal): void {
    // The async wrapper turns a synchronous throw into a rejection handled like any other.
    entry.done = (async () => entry.runnable.start(signal))().then(
      () => {
        entry.finished = true;
        if (!this.#stopping) this.#log.debug({ runnable: entry.name }, 'runnable returned before stop');
      },
      (err: unknown) => {
        entry.finished = true;
        if (this.#stopping) this.#log.warn({ err, runnable: entry.name }, 'runnable failed during shutdown');
        else this.#fail(err, entry.name);
      },
    );
  }

  #fail(err: unknown, runnable?: string): void {
    if (this.#firstError === undefined) this.#firstError = err;
    this.#log.error({ err, runnable }, 'stopping manager after a failure');
    this.#requestStop();
  }

  /** Stops everything in order within the grace period; false if some runnable had not returned by then. */
  async #shutdown(): Promise<boolean> {
    this.#stopping = true;
    const graceEnd = this.#clock.now() + this.#graceMs;
    // Leader-only work first, then the lease (released only once that work drained, or the grace
    // ran out: the fence, src/safety/fencing.ts, aborts any write still in flight at release),
    // then caches and everything else.
    const leaders = this.#runnables.filter((e) => e.needLeaderElection);
    this.#leading.abort(new Error('manager stopping'));
    await this.#drain(leaders, graceEnd);
    this.#election.abort(new Error('manager stopping'));
    if (this.#electionEntry) await this.#drain([this.#electionEntry], graceEnd);
    this.#ac.abort(new Error('manager stopping'));
    const all = [...this.#caches, ...this.#runnables, ...(this.#electionEntry ? [this.#electionEntry] : [])];
    if (await this.#drain(all, graceEnd)) {
      this.#log.info('all runnables stopped');
      return true;
    }
    this.#log.warn(
      { gracePeriodMs: this.#graceMs, stuck: this.unfinished() },
      'grace period expired; leaving runnables behind',
    );
    return false;
  }

  /** Waits for entries to finish until graceEnd; true if they all did. */
  async #drain(entries: readonly Entry[], graceEnd: number): Promise<boolean> {
    const pending = entries.flatMap((e) => (e.done && !e.finished ? [e.done] : []));
    if (pending.length === 0) return true;
    let graceTimer: TimerHandle | undefined;
    const outcome = await Promise.race([
      Promise.all(pending).then(() => 'drained' as const),
      new Promise<'grace'>((resolve) => {
        graceTimer = this.#clock.setTimeout(() => resolve('grace'), Math.max(0, graceEnd - this.#clock.now()));
      }),
    ]);
    if (graceTimer !== undefined) this.#clock.clearTimeout(graceTimer);
    return outcome === 'drained';
  }
}

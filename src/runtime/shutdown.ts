// The last resort behind the Manager's grace period: once shutdown begins, the `run` process ends
// at most grace + margin later, whatever is still pending. The Manager gives up on runnables
// after the grace period, but only if its own timers get to run and the code after it returns;
// and even then Node keeps a process alive for as long as anything holds the event loop: a
// probe waiting out its own timeout, a list or watch client-node cannot abort, a socket. Go's
// controllers end when main returns; this does the same for the operator: the process exits when
// run() returns, or at the deadline (exit code 1, with a log line naming what was still running).

import type { Logger } from 'pino';
import type { Clock, TimerHandle } from './clock.ts';

/** Time past the grace period for what follows the drain (probes, health server, logs). */
export const EXIT_MARGIN_MS = 5_000;

/** The exit code when the deadline passes: the run failed to shut down in time. */
export const DEADLINE_EXIT_CODE = 1;

export interface ExitDeadlineOptions {
  clock: Clock;
  /** How long the process may run once shutdown began: the grace period plus EXIT_MARGIN_MS. */
  limitMs: number;
  /** Ends the process (process.exit in production). */
  exit: (code: number) => void;
  logger: Logger;
  /** What is still running, for the log line when the deadline passes (runnables, open handles). */
  pending: () => Record<string, unknown>;
}

/** Ends the process within a fixed time once shutdown began; see the module comment. */
export class ExitDeadline {
  readonly #o: ExitDeadlineOptions;
  #timer: TimerHandle | undefined;
  #ended = false;

  constructor(opts: ExitDeadlineOptions) {
    if (!(opts.limitMs >= 0)) throw new RangeError(`limitMs must be >= 0, got ${opts.limitMs}`);
    this.#o = opts;
  }

  /**
   * Shutdown began: from now on the process has limitMs to end. Later calls keep the first
   * deadline. The timer is unref'd: it never keeps alive a process that would end anyway.
   */
  arm(): void {
    if (this.#ended || this.#timer !== undefined) return;
    const { clock, limitMs } = this.#o;
    this.#timer = clock.setTimeout(() => this.#expire(), limitMs, { unref: true });
  }

  /** True once arm() was called (and the process has not ended). */
  armed(): boolean {
    return this.#timer !== undefined;
  }

  /** run() returned: the process ends now with `code`; what it still holds no longer matters. */
  finish(code: number): void {
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#end(code);
  }

  #expire(): void {
    this.#timer = undefined;
    if (this.#ended) return;
    let pending: Record<string, unknown>;
    try {
      pending = this.#o.pending();
    } catch (err) {
      pending = { pendingError: String(err) };
    }
    this.#o.logger.error(
      { limitMs: this.#o.limitMs, ...pending },
      'shutdown did not finish within its deadline; exiting',
    );
    this.#end(DEADLINE_EXIT_CODE);
  }

  #end(code: number): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#o.exit(code);
  }
}

/** What holds the event loop, counted by kind (e.g. { TCPSocketWrap: 3, Timeout: 2 }). */
export function openHandles(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1;
  return counts;
}

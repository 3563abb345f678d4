// What `readygate run` does with an error no code caught ('uncaughtException', 'unhandledRejection'):
// it logs it at error level with its stack, counts it in readygate_unexpected_errors_total{kind},
// and keeps serving. Node's default is to end the process.
//
// Why keep serving: such an error is a readygate bug, and it is most likely triggered by what one
// target sent (the exec client once threw from inside a socket listener on a hostile status
// frame). Ending the process would turn that one target into an outage of every gate: a restart
// is safe (debouncers are seeded from the pods' conditions, the failsafe from their transition
// times), but the same target would crash the new process within a probe period, the pod would
// crash-loop, and while it is down or backing off no gate moves at all. The state an uncaught
// error leaves behind is local to what threw (one socket, one probe run): the scheduler's own
// deadline ends a run that never settles (src/probes/scheduler.ts), and the informers restart on
// their own (src/runtime/informer.ts). The metric and the log line are what an operator alerts on.
//
// Probe runs are contained one level down already (src/safety/containment.ts); this is the net
// under everything else.

import type { Logger } from 'pino';
import { CrashLogLimiter } from '../safety/containment.ts';

export type UnexpectedKind = 'uncaughtException' | 'unhandledRejection';

/** The part of `process` this needs, injectable for tests. */
export interface UnexpectedErrorSource {
  on(event: UnexpectedKind, listener: (error: unknown) => void): unknown;
  off(event: UnexpectedKind, listener: (error: unknown) => void): unknown;
}

export interface UnexpectedErrorOptions {
  log: Logger;
  /** Counts one error (the metric). */
  count: (kind: UnexpectedKind) => void;
  /** Milliseconds, for the log limit. */
  now: () => number;
  source?: UnexpectedErrorSource;
}

/**
 * Installs the listeners (see the module comment); returns the function that removes them. At
 * most 10 lines a minute are logged; every error is counted.
 */
export function handleUnexpectedErrors(opts: UnexpectedErrorOptions): () => void {
  const source = opts.source ?? process;
  const limiter = new CrashLogLimiter();
  const listener =
    (kind: UnexpectedKind) =>
    (error: unknown): void => {
      // A listener that throws would end the process after all: everything here is best effort.
      try {
        opts.count(kind);
      } catch {
        // the metric is gone; the log line below may still say it
      }
      try {
        const admitted = limiter.admit(opts.now());
        if (!admitted.log) return;
        opts.log.error(
          { kind, err: error, ...(admitted.suppressed > 0 ? { suppressedLogs: admitted.suppressed } : {}) },
          'unexpected error (a readygate bug); the operator keeps running',
        );
      } catch {
        // nothing left to report it with
      }
    };
  const onException = listener('uncaughtException');
  const onRejection = listener('unhandledRejection');
  source.on('uncaughtException', onException);
  source.on('unhandledRejection', onRejection);
  return () => {
    source.off('uncaughtException', onException);
    source.off('unhandledRejection', onRejection);
  };
}

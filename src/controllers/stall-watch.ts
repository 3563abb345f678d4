// The shell around src/safety/stalls.ts: a heartbeat on the event loop notes every gap long
// enough to be a stall. Real time on purpose: it measures this process, not the injected clock.
import { performance } from 'node:perf_hooks';
import { StallLog } from '../safety/stalls.ts';

/** Heartbeat period: 10 wake-ups a second cost nothing next to the probes. */
export const HEARTBEAT_MS = 100;

/** Answers how much of a window the operator itself was stalled. */
export interface StallSource {
  /** The longest stall within [from, to] on performance.now()'s clock, the one still going included. */
  stalledWithin(from: number, to: number): number;
  stop(): void;
}

/** Starts the heartbeat; stop() clears it. The timer is unref'd: it keeps no process alive. */
export function watchStalls(): StallSource {
  const log = new StallLog();
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    log.record(last + HEARTBEAT_MS, now);
    last = now;
  }, HEARTBEAT_MS);
  timer.unref();
  return {
    stalledWithin: (from, to) => {
      // A timeout that fired in the same timers phase as the late heartbeat, but before it, still
      // sees the stall: the gap since the last beat is a stall going on now.
      const ongoing = Math.min(performance.now(), to) - Math.max(last + HEARTBEAT_MS, from);
      return Math.max(log.stalledWithin(from, to), ongoing);
    },
    stop: () => clearInterval(timer),
  };
}

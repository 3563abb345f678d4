// A timeout caused by the operator's own stall is no observation of the pod. When the process is
// descheduled or its event loop blocks for a second, every probe in flight runs past its timer,
// and Node runs expired timers before it reads the sockets: answers that arrived meanwhile
// lose to their own timeouts. In the sharding gate (test/integration/sharding.test.ts, on a
// loaded machine) that flipped healthy pods to False with ProbeTimeout. The kubelet throws away
// a probe that errored (pkg/kubelet/prober/worker.go); readygate does the same with a timeout
// whose window held a stall of its own: the outcome becomes `unknown`, which the debouncer
// neither counts nor resets on (src/probes/types.ts). A dead pod still flips once its probes
// time out without a stall, so a stall delays a flip; it cannot stop one for good unless every
// window stalls, and then the operator is too starved to judge anything.
//
// This module holds the rule and the record, pure; src/controllers/stall-watch.ts measures.

/** A gap in the event loop at least this long is a stall. */
export const STALL_MIN_MS = 250;
/** Stalls kept; older ones are dropped first (a probe window is at most a few minutes). */
export const MAX_STALLS = 256;

/** The stalls seen, as [start, end) intervals on the monotonic clock, oldest first. */
export class StallLog {
  readonly #stalls: { start: number; end: number }[] = [];

  /** Notes a gap from `start` to `end`; one shorter than STALL_MIN_MS is no stall. */
  record(start: number, end: number): void {
    if (end - start < STALL_MIN_MS) return;
    this.#stalls.push({ start, end });
    if (this.#stalls.length > MAX_STALLS) this.#stalls.shift();
  }

  /** The longest part of one stall within [from, to]. */
  stalledWithin(from: number, to: number): number {
    let longest = 0;
    for (let i = this.#stalls.length - 1; i >= 0; i--) {
      const s = this.#stalls[i]!;
      if (s.end <= from) break; // older ones end earlier still
      longest = Math.max(longest, Math.min(s.end, to) - Math.max(s.start, from));
    }
    return longest;
  }
}

/**
 * Pure: whether a timeout that ran over `windowMs` with `stalledMs` of stall inside it says
 * nothing about the pod: the stall took at least half the window, and at least STALL_MIN_MS.
 */
export function stallExplainsTimeout(windowMs: number, stalledMs: number): boolean {
  return stalledMs >= STALL_MIN_MS && stalledMs * 2 >= windowMs;
}

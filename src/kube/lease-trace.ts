// Where a slow Lease call spent its time, from undici's diagnostics channels: waiting in the
// client before its headers went out (a busy event loop, a connection's stream limit, a
// connection being opened), then waiting for the answer (the way there and back, API Priority
// and Fairness, the API server, etcd), then reading the body. A renewal that nears the renew
// deadline costs the replica its Lease; the log line says which part to look at, instead of a
// guess. Only calls on Lease paths are timed, and only those slower than the threshold logged.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';

/** The phases of one call, in ms. */
export interface LeaseCallPhases {
  method: string;
  path: string;
  /** Created → headers sent on a connection. */
  queuedMs: number;
  /** Headers sent → response headers received. */
  answerMs: number;
  /** Response headers → body read (or the error). */
  bodyMs: number;
  totalMs: number;
  /** The error that ended it, if any. */
  error?: string;
}

interface Timing {
  method: string;
  path: string;
  created: number;
  sent?: number;
  answered?: number;
}

/** Pure: the phases of a call from its timestamps (a phase not reached counts as 0). */
export function phasesOf(t: Timing, ended: number, error?: string): LeaseCallPhases {
  const sent = t.sent ?? ended;
  const answered = t.answered ?? ended;
  const round = (ms: number) => Math.round(ms);
  return {
    method: t.method,
    path: t.path,
    queuedMs: round(sent - t.created),
    answerMs: round(Math.max(0, answered - sent)),
    bodyMs: round(Math.max(0, ended - answered)),
    totalMs: round(ended - t.created),
    ...(error === undefined ? {} : { error }),
  };
}

const LEASES = '/apis/coordination.k8s.io/v1/';

interface UndiciRequest {
  method: string;
  path: string;
}

/**
 * Times every Lease call of this process; `onSlow` gets those that took at least `slowMs`.
 * Returns a stop function that unsubscribes.
 */
export function traceLeaseCalls(slowMs: number, onSlow: (phases: LeaseCallPhases) => void): () => void {
  const timings = new WeakMap<object, Timing>();
  const timing = (request: unknown) => timings.get(request as object);
  const end = (request: unknown, error?: string) => {
    const t = timing(request);
    if (!t) return;
    timings.delete(request as object);
    const phases = phasesOf(t, performance.now(), error);
    if (phases.totalMs >= slowMs) onSlow(phases);
  };
  const handlers: Record<string, (message: unknown) => void> = {
    'undici:request:create': (m) => {
      const { request } = m as { request: UndiciRequest };
      if (!request.path.startsWith(LEASES) || !request.path.includes('/leases')) return;
      timings.set(request, { method: request.method, path: request.path, created: performance.now() });
    },
    'undici:client:sendHeaders': (m) => {
      const t = timing((m as { request: unknown }).request);
      if (t) t.sent ??= performance.now();
    },
    'undici:request:headers': (m) => {
      const t = timing((m as { request: unknown }).request);
      if (t) t.answered ??= performance.now();
    },
    'undici:request:trailers': (m) => end((m as { request: unknown }).request),
    'undici:request:error': (m) => {
      const { request, error } = m as { request: unknown; error: unknown };
      end(request, error instanceof Error ? error.name : String(error));
    },
  };
  for (const [name, fn] of Object.entries(handlers)) subscribe(name, fn);
  return () => {
    for (const [name, fn] of Object.entries(handlers)) unsubscribe(name, fn);
  };
}

// exec probe: runs the command in the pod's container through the pods/exec subresource
// (never a local process: a tenant's command must not run with the operator's credentials).
import { Readable, Writable } from 'node:stream';
import { Exec, type KubeConfig, type V1Status } from '@kubernetes/client-node';
// Not re-exported from the package root; needed to inject the socket factory (to close the
// socket on timeout) and our own streams (its defaults are process.stdin/stdout).
import { WebSocketHandler } from '@kubernetes/client-node/dist/web-socket-handler.js';
import WebSocket from 'ws';
import { classifyNetError, formatTimeout } from './net-errors.ts';
import type { ProbeResult } from './types.ts';

export interface ExecProbeRequest {
  namespace: string;
  pod: string;
  container: string;
  command: readonly string[];
  timeoutMs: number;
}

export interface ExecProber {
  /** Runs the command once; resolves (never rejects) with the result. */
  probe(req: ExecProbeRequest): Promise<ProbeResult>;
}

export interface ExecProberDeps {
  now?: () => number;
}

/** Creates an exec prober that talks to the API server described by `kc` (injected). */
export function createExecProber(kc: KubeConfig, deps: ExecProberDeps = {}): ExecProber {
  const now = deps.now ?? performance.now.bind(performance);
  return { probe: (req) => runExec(kc, req, now) };
}

function runExec(kc: KubeConfig, req: ExecProbeRequest, now: () => number): Promise<ProbeResult> {
  const started = now();
  const subject = `exec ${JSON.stringify(req.command)} in ${req.namespace}/${req.pod}/${req.container}`;
  return new Promise((resolve) => {
    let settled = false;
    let socket: WebSocket | undefined;
    let opened = false;
    let socketError: unknown;
    const finish = (r: Omit<ProbeResult, 'durationMs'>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket?.terminate();
      resolve({ ...r, durationMs: now() - started });
    };
    // Kubelet exec probes fail on timeoutSeconds (pkg/probe/exec, ExecProbeTimeout); here the
    // socket is closed, which makes the API server tear the exec session down. A session that
    // never opened says nothing about the command: the API server did not answer in time.
    const timer = setTimeout(() => {
      const after = formatTimeout(req.timeoutMs);
      if (!opened) return finish(notObserved(subject, `no exec session within ${after}`));
      finish({ outcome: 'timeout', couldNotLook: false, message: `${subject}: timeout after ${after}` });
    }, req.timeoutMs);

    const handler = new WebSocketHandler(
      kc,
      (uri, protocols, opts) => {
        socket = new WebSocket(uri, protocols, { ...opts, handshakeTimeout: req.timeoutMs });
        // Credentials can take a while to resolve (exec auth plugins); if the deadline passed
        // meanwhile, do not start a command nobody waits for.
        if (settled) socket.terminate();
        socket.on('open', () => {
          opened = true;
        });
        socket.on('error', (err) => {
          socketError = err;
        });
        // Listening replaces ws's own "Unexpected server response" error: the status is kept.
        socket.on('unexpected-response', (_req, res) => finish(refused(subject, res.statusCode ?? 0)));
        socket.on('close', () => {
          // Before open, the error path reports it. After open, v4/v5 always send a status
          // before closing; without one the command's result was never seen.
          if (opened) finish(notObserved(subject, 'exec stream closed without exit status'));
        });
        return socket;
      },
      { stdin: new Readable({ read() {} }), stdout: sink(), stderr: sink() },
    );
    new Exec(kc, handler)
      .exec(req.namespace, req.pod, req.container, [...req.command], sink(), sink(), null, false, (status) =>
        finish(fromStatus(subject, status)),
      )
      .catch(() => {
        // Never reached the API server (refused, unreachable), or never tried (credentials,
        // kubeconfig): nothing was seen either way.
        const why = socketError
          ? `API server unreachable: ${classifyNetError(socketError).text}`
          : 'could not open an exec session (credentials or kubeconfig)';
        finish(notObserved(subject, why));
      });
  });
}

/**
 * The API server refused to open the session. 400 (no such container in the pod) and 404 (no
 * such pod) are about the target, as a refused port is for an HTTP probe. Anything else (401,
 * 403 missing RBAC, 429 throttling, 5xx, a proxy that will not upgrade) is about the path
 * from the operator to the container: not an observation of the pod.
 */
function refused(subject: string, httpStatus: number): Omit<ProbeResult, 'durationMs'> {
  if (httpStatus === 400 || httpStatus === 404) {
    return { outcome: 'failure', couldNotLook: false, message: `${subject}: exec refused with HTTP ${httpStatus}` };
  }
  return notObserved(subject, `API server answered HTTP ${httpStatus}`);
}

// An API problem, not the pod's answer: the debouncer neither counts nor resets on it, and the
// failsafe sees "could not look".
function notObserved(subject: string, why: string): Omit<ProbeResult, 'durationMs'> {
  return { outcome: 'unknown', couldNotLook: true, message: `${subject}: not run: ${why}` };
}

// The status channel (3) carries a metav1.Status: Success, or Failure/NonZeroExitCode with the
// code in details.causes[reason=ExitCode] (k8s.io/client-go/util/exec, remotecommand v4+).
// Its message is the runtime's text and may quote the container's output, so only the reason
// (a CamelCase word such as InternalError) and the exit code as a number are reported.
function fromStatus(subject: string, status: V1Status): Omit<ProbeResult, 'durationMs'> {
  if (status.status === 'Success')
    return { outcome: 'success', couldNotLook: false, message: `${subject}: exit code 0` };
  if (status.reason === 'NonZeroExitCode') {
    const text = status.details?.causes?.find((c) => c.reason === 'ExitCode')?.message ?? '';
    const code = /^\d{1,3}$/.test(text) ? text : 'unknown';
    return { outcome: 'failure', couldNotLook: false, message: `${subject}: exit code ${code}` };
  }
  const reason = /^[A-Za-z]{1,64}$/.test(status.reason ?? '') ? ` (${status.reason})` : '';
  return { outcome: 'failure', couldNotLook: false, message: `${subject}: exec failed${reason}` };
}

// Output is discarded: it is not needed for the verdict and must not reach a condition message.
function sink(): Writable {
  return new Writable({ write: (_chunk, _enc, cb) => cb() });
}

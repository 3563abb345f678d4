// exec probe: runs the command in the pod's container through the pods/exec subresource
// (never a local process: a tenant's command must not run with the operator's credentials).
import { Readable, Writable } from 'node:stream';
import { Exec, type KubeConfig, type V1Status } from '@kubernetes/client-node';
// Not re-exported from the package root; needed to inject the socket factory (to close the
// socket on timeout) and our own streams (its defaults are process.stdin/stdout).
import { WebSocketHandler } from '@kubernetes/client-node/dist/web-socket-handler.js';
import WebSocket from 'ws';
import { formatTimeout } from './net-errors.ts';
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
    const finish = (r: Omit<ProbeResult, 'durationMs'>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket?.terminate();
      resolve({ ...r, durationMs: now() - started });
    };
    // Kubelet exec probes fail on timeoutSeconds (pkg/probe/exec, ExecProbeTimeout); here the
    // socket is closed, which makes the API server tear the exec session down.
    const timer = setTimeout(() => {
      finish({
        outcome: 'timeout',
        couldNotLook: !opened,
        message: `${subject}: timeout after ${formatTimeout(req.timeoutMs)}${opened ? '' : ' (connect)'}`,
      });
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
        socket.on('close', () => {
          // Before open, the error path reports it. After open, v4/v5 always send a status
          // before closing; without one the result is unknown.
          if (!opened) return;
          finish({ outcome: 'failure', couldNotLook: false, message: `${subject}: stream closed without exit status` });
        });
        return socket;
      },
      { stdin: new Readable({ read() {} }), stdout: sink(), stderr: sink() },
    );
    new Exec(kc, handler)
      .exec(req.namespace, req.pod, req.container, [...req.command], sink(), sink(), null, false, (status) =>
        finish(fromStatus(subject, status)),
      )
      .catch((err: unknown) => {
        // Never reached the container (API server unreachable, 403, 404): the operator could not look.
        const text = (err as { message?: string } | null)?.message ?? String(err);
        finish({ outcome: 'failure', couldNotLook: true, message: `${subject}: ${clip(text)}` });
      });
  });
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

function clip(s: string): string {
  return s.length > 200 ? `${s.slice(0, 200)}…` : s;
}

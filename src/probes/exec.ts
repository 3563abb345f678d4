// exec probe: runs the command in the pod's container through the pods/exec subresource
// (never a local process: a tenant's command must not run with the operator's credentials).
//
// Our own small client of the exec WebSocket (v5/v4.channel.k8s.io) on `ws`, not client-node's
// Exec and WebSocketHandler: its message handler JSON.parses the status channel without a catch,
// throws 'Unknown stream' on a channel it does not know, and writes output after the status into
// an ended stream, all inside the socket's 'message' listener, where a throw is an uncaught
// exception that ends the whole operator. The bytes come from the API server proxying the
// kubelet and the container runtime, partly from the container itself (its output): one broken
// or hostile node or pod must not stop every gate. Here every frame is parsed in one pure function
// that cannot throw: stdout and stderr are discarded, unknown channels ignored, the status
// (channel 3) read within MAX_STATUS_BYTES, and no message may exceed MAX_FRAME_BYTES.
import type { KubeConfig } from '@kubernetes/client-node';
import WebSocket, { type ClientOptions } from 'ws';
import { classifyNetError, formatTimeout } from './net-errors.ts';
import type { ProbeResult } from './types.ts';

/** Subprotocols offered, newest first; both carry the exit status on channel 3. */
export const EXEC_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'];

/**
 * Largest WebSocket message accepted (ws closes the session with 1009 beyond it). The kubelet and
 * the API server copy output in 32 KiB chunks (io.Copy); a status is a few hundred bytes.
 */
export const MAX_FRAME_BYTES = 256 * 1024;

/** Largest status (channel 3) parsed; a longer one is unreadable. */
export const MAX_STATUS_BYTES = 16 * 1024;

const STATUS_CHANNEL = 3;

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
    // socket is closed, which makes the API server tear the exec session down. A session that
    // never opened says nothing about the command: the API server did not answer in time.
    const timer = setTimeout(() => {
      const after = formatTimeout(req.timeoutMs);
      if (!opened) return finish(notObserved(subject, `no exec session within ${after}`));
      finish({ outcome: 'timeout', couldNotLook: false, message: `${subject}: timeout after ${after}` });
    }, req.timeoutMs);

    const open = async (): Promise<void> => {
      const opts: ClientOptions = {};
      await kc.applyToHTTPSOptions(opts);
      // Credentials can take a while to resolve (exec auth plugins); if the deadline passed
      // meanwhile, do not start a command nobody waits for.
      if (settled) return;
      const ws = new WebSocket(execUrl(kc, req), EXEC_PROTOCOLS, {
        ...opts,
        handshakeTimeout: req.timeoutMs,
        maxPayload: MAX_FRAME_BYTES,
        perMessageDeflate: false,
      });
      socket = ws;
      ws.on('open', () => {
        opened = true;
      });
      // Always listened to: an 'error' without a listener would be thrown. Before open nothing
      // was run: the API server could not be reached. After open 'close' follows and reports.
      ws.on('error', (err) => {
        if (!opened) finish(notObserved(subject, `API server unreachable: ${classifyNetError(err).text}`));
      });
      // Listening replaces ws's own "Unexpected server response" error: the status is kept.
      ws.on('unexpected-response', (_req, res) => finish(refused(subject, res.statusCode ?? 0)));
      ws.on('message', (data, isBinary) => {
        const frame = readFrame(data, isBinary);
        if (frame.kind === 'status') finish(fromStatus(subject, frame.status));
        else if (frame.kind === 'unreadable') finish(notObserved(subject, 'unreadable exit status'));
      });
      // v4/v5 always send a status before closing; without one the command's result was never seen.
      ws.on('close', () => {
        if (opened) finish(notObserved(subject, 'exec stream closed without exit status'));
      });
    };
    open().catch(() => {
      // Never tried (credentials, kubeconfig, a server URL ws refuses): nothing was seen.
      finish(notObserved(subject, 'could not open an exec session (credentials or kubeconfig)'));
    });
  });
}

/**
 * The pods/exec URL on the current cluster (ws: or wss: as the server is http: or https:), with
 * stdout and stderr requested, as client-node's Exec asks for them, and no stdin or TTY.
 */
export function execUrl(kc: KubeConfig, req: ExecProbeRequest): string {
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new Error('the kubeconfig has no current cluster');
  const query = new URLSearchParams({ stdout: 'true', stderr: 'true', stdin: 'false', tty: 'false' });
  for (const arg of req.command) query.append('command', arg);
  query.set('container', req.container);
  const path = `/api/v1/namespaces/${encodeURIComponent(req.namespace)}/pods/${encodeURIComponent(req.pod)}/exec`;
  return `${server.replace(/^http/, 'ws').replace(/\/+$/, '')}${path}?${query}`;
}

/** One WebSocket message of the channel protocol, as the prober reads it. */
export type ExecFrame =
  | { kind: 'ignored' }
  | { kind: 'status'; status: Record<string, unknown> }
  | { kind: 'unreadable' };

/**
 * Reads one message: channel byte, then payload. Only the status channel matters; output (1, 2),
 * stream close (255, v5), text messages and channels the protocol does not define are ignored.
 * A status that is too long, not JSON, or not a JSON object is unreadable. Never throws.
 */
export function readFrame(data: WebSocket.RawData, isBinary: boolean): ExecFrame {
  if (!isBinary) return { kind: 'ignored' };
  const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
  if (bytes.length < 1 || bytes[0] !== STATUS_CHANNEL) return { kind: 'ignored' };
  if (bytes.length - 1 > MAX_STATUS_BYTES) return { kind: 'unreadable' };
  let status: unknown;
  try {
    status = JSON.parse(bytes.toString('utf8', 1));
  } catch {
    return { kind: 'unreadable' };
  }
  if (typeof status !== 'object' || status === null || Array.isArray(status)) return { kind: 'unreadable' };
  return { kind: 'status', status: status as Record<string, unknown> };
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
// (a CamelCase word such as InternalError) and the exit code as a number are reported. Any field
// may have any JSON type here: it is read as unknown.
function fromStatus(subject: string, status: Record<string, unknown>): Omit<ProbeResult, 'durationMs'> {
  if (status.status === 'Success')
    return { outcome: 'success', couldNotLook: false, message: `${subject}: exit code 0` };
  if (status.reason === 'NonZeroExitCode') {
    const text = exitCodeText(status.details);
    const code = /^\d{1,3}$/.test(text) ? text : 'unknown';
    return { outcome: 'failure', couldNotLook: false, message: `${subject}: exit code ${code}` };
  }
  const reason =
    typeof status.reason === 'string' && /^[A-Za-z]{1,64}$/.test(status.reason) ? ` (${status.reason})` : '';
  return { outcome: 'failure', couldNotLook: false, message: `${subject}: exec failed${reason}` };
}

/** details.causes[reason=ExitCode].message, or '' when the status does not have it in that shape. */
function exitCodeText(details: unknown): string {
  const causes = isRecord(details) ? details.causes : undefined;
  if (!Array.isArray(causes)) return '';
  const cause: unknown = causes.find((c) => isRecord(c) && c.reason === 'ExitCode');
  const message = isRecord(cause) ? cause.message : undefined;
  return typeof message === 'string' || typeof message === 'number' ? String(message) : '';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

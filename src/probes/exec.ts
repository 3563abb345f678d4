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
import type { IncomingMessage } from 'node:http';
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
    // Two deadlines of timeoutMs each. Until the session opens, nothing has run: the API server
    // (and its proxy to the kubelet) did not answer in time, which says nothing about the command.
    // Once it opens, the command has started, and the kubelet's own exec probe (pkg/probe/exec,
    // ExecProbeTimeout) fails it on timeoutSeconds from there; the socket is then closed, which
    // makes the API server tear the session down. One clock from the start instead read a slow
    // API server (just restarted, loaded) as the command timing out: a failure that flipped a gate.
    const after = formatTimeout(req.timeoutMs);
    let timer = setTimeout(() => finish(notObserved(subject, `no exec session within ${after}`)), req.timeoutMs);
    const commandStarted = (): void => {
      clearTimeout(timer);
      timer = setTimeout(
        () => finish({ outcome: 'timeout', couldNotLook: false, message: `${subject}: timeout after ${after}` }),
        req.timeoutMs,
      );
    };

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
        if (!settled) commandStarted();
      });
      // Always listened to: an 'error' without a listener would be thrown. Before open nothing
      // was run: the API server could not be reached. After open 'close' follows and reports.
      ws.on('error', (err) => {
        if (!opened) finish(notObserved(subject, `API server unreachable: ${classifyNetError(err).text}`));
      });
      // Listening replaces ws's own "Unexpected server response" error: the status is kept, and
      // for the two codes that may be about the target, the Status body that says whether it is.
      ws.on('unexpected-response', (_req, res) => {
        const code = res.statusCode ?? 0;
        if (code !== 400 && code !== 404) return finish(refused(req, subject, code, undefined));
        readBody(res, MAX_STATUS_BYTES, (body) => finish(refused(req, subject, code, body)));
      });
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
 * The API server refused to open the session. Only two refusals are about the target, as a refused
 * port is for an HTTP probe: 404 NotFound for this pod, and 400 "container C is not valid for pod
 * P" (pkg/registry/core/pod/strategy.go, streamLocation). Every other refusal is about the path
 * from the operator to the container: a 404 for the Node or for a route the API server has not
 * installed yet (it was seen while kube-apiserver restarted), 400 "pod does not have a host
 * assigned", 401, 403 (RBAC), 429, 5xx, a proxy that will not upgrade. `body` is the response
 * body as read (undefined when not read or unreadable).
 */
export function refused(
  req: Pick<ExecProbeRequest, 'pod' | 'container'>,
  subject: string,
  httpStatus: number,
  body: string | undefined,
): Omit<ProbeResult, 'durationMs'> {
  const status = parseObject(body);
  const details = isRecord(status?.details) ? status.details : undefined;
  if (httpStatus === 404 && status?.reason === 'NotFound' && details?.kind === 'pods' && details.name === req.pod) {
    return { outcome: 'failure', couldNotLook: false, message: `${subject}: exec refused with HTTP 404: no such pod` };
  }
  const noContainer = `container ${req.container} is not valid for pod ${req.pod}`;
  if (httpStatus === 400 && status?.reason === 'BadRequest' && status.message === noContainer) {
    return {
      outcome: 'failure',
      couldNotLook: false,
      message: `${subject}: exec refused with HTTP 400: no such container in the pod`,
    };
  }
  return notObserved(subject, `API server answered HTTP ${httpStatus}`);
}

/** Reads at most `limit` bytes of a response body; `undefined` when longer or broken. Calls `done` once. */
function readBody(res: IncomingMessage, limit: number, done: (body: string | undefined) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let called = false;
  const end = (body: string | undefined) => {
    if (called) return;
    called = true;
    done(body);
  };
  res.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > limit) {
      res.destroy();
      end(undefined);
    } else chunks.push(chunk);
  });
  res.on('end', () => end(Buffer.concat(chunks).toString('utf8')));
  res.on('error', () => end(undefined));
  res.on('close', () => end(size > limit ? undefined : Buffer.concat(chunks).toString('utf8')));
}

/** A JSON object, or undefined for anything else (never throws). */
function parseObject(text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return isRecord(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

// An API problem, not the pod's answer: the debouncer neither counts nor resets on it, and the
// failsafe sees "could not look".
function notObserved(subject: string, why: string): Omit<ProbeResult, 'durationMs'> {
  return { outcome: 'unknown', couldNotLook: true, message: `${subject}: not run: ${why}` };
}

// The status channel (3) carries a metav1.Status: Success, or Failure/NonZeroExitCode with the
// code in details.causes[reason=ExitCode] (k8s.io/client-go/util/exec, remotecommand v4+).
// Any other Failure (InternalError when the API server's stream translator or the kubelet could not
// run the command) says nothing about the command's answer: as the kubelet's own exec prober
// (pkg/probe/exec) returns Unknown for every error that is not an exit code, and its worker throws
// that result away, it is "could not look", never a failure. Its message is the runtime's text and
// may quote the container's output, so only the reason (a CamelCase word) and the exit code as a
// number are reported. Any field may have any JSON type here: it is read as unknown.
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
  return notObserved(subject, `exec failed without an exit code${reason}`);
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

// The kubelet's exec endpoint, played by a test fixture, so that pods/exec completes on the test
// control plane. Without it the API server cannot reach a kubelet: the fixture's Node has no
// address, and kube-apiserver v1.37 answers every exec upgrade with HTTP 500 ("no preferred
// addresses found"). With this endpoint the Node declares an InternalIP, a kubelet port and the
// feature ExtendWebSocketsToKubelet, so the API server proxies the client's WebSocket
// (v5.channel.k8s.io) straight here (pkg/registry/core/pod/rest/subresources.go, ExecREST.Connect)
// instead of translating it to SPDY. Each session answers at once with an exit status the test
// chooses per pod, on the status channel (3), as the kubelet does; no command ever runs.
// A pod can also be made hostile (setHostile): its sessions then send what a broken or hostile
// kubelet, runtime or container could put on the stream, which the API server passes through
// untouched. Only loopback is used; the serving certificate is any one for 127.0.0.1 (the API server does
// not verify the kubelet's without --kubelet-certificate-authority).
import type { IncomingMessage } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { CoreV1Api } from '@kubernetes/client-node';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { type WebSocket, WebSocketServer } from 'ws';
import { NODE_NAME } from './kubelet-fixture.ts';

const PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'];
const STATUS_CHANNEL = 3;

export interface ExecSession {
  namespace: string;
  pod: string;
  container: string;
  command: string[];
  exitCode: number;
  hostile?: HostileSession;
}

/**
 * What a hostile pod's sessions send. Both start with a frame on channel 9 (a channel the protocol
 * does not define) and output quoting HOSTILE_TEXT, then:
 * - `invalid-status`: invalid JSON on the status channel;
 * - `odd-status`: a NonZeroExitCode status whose message quotes HOSTILE_TEXT and whose
 *   details.causes is a number, then more output after the status.
 */
export type HostileSession = 'invalid-status' | 'odd-status';

/** Text a hostile session sends; it must never reach a condition. */
export const HOSTILE_TEXT = 'pwned \u001b]0;hostile\u0007 <script>';

export class KubeletExecServer {
  /** Every session served, in order. */
  readonly sessions: ExecSession[] = [];
  readonly #exitCodes = new Map<string, number>();
  readonly #hostile = new Map<string, HostileSession>();
  readonly #server: Server;
  readonly #wss: WebSocketServer;
  #port = 0;

  constructor(tls: { cert: string; key: string }) {
    this.#server = createServer(tls);
    this.#wss = new WebSocketServer({
      server: this.#server,
      handleProtocols: (offered) => PROTOCOLS.find((p) => offered.has(p)) ?? false,
    });
    this.#wss.on('connection', (ws, req) => {
      const session = this.#session(req);
      if (!session) {
        ws.close(1008, 'not an exec path');
        return;
      }
      this.sessions.push(session);
      if (session.hostile) return hostile(ws, session.hostile);
      const status =
        session.exitCode === 0
          ? { metadata: {}, status: 'Success' }
          : {
              metadata: {},
              status: 'Failure',
              reason: 'NonZeroExitCode',
              message: `command terminated with non-zero exit code: ${session.exitCode}`,
              details: { causes: [{ reason: 'ExitCode', message: String(session.exitCode) }] },
            };
      ws.send(frame(STATUS_CHANNEL, JSON.stringify(status)), () => ws.close(1000));
    });
  }

  /** Listens on 127.0.0.1:port. */
  async listen(port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, '127.0.0.1', () => resolve());
    });
    this.#port = port;
  }

  /** Points the fixture's Node at this endpoint (the API server reads it on every exec). */
  async attach(core: CoreV1Api, nodeName = NODE_NAME): Promise<void> {
    if (this.#port === 0) throw new Error('listen() before attach()');
    await core.patchNodeStatus(
      {
        name: nodeName,
        body: {
          status: {
            addresses: [{ type: 'InternalIP', address: '127.0.0.1' }],
            daemonEndpoints: { kubeletEndpoint: { Port: this.#port } },
            declaredFeatures: ['ExtendWebSocketsToKubelet'],
          },
        },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }

  /** Points the fixture's Node nowhere again (exec then fails as before attach()), for a shared control plane. */
  async detach(core: CoreV1Api, nodeName = NODE_NAME): Promise<void> {
    await core.patchNodeStatus(
      {
        name: nodeName,
        body: { status: { addresses: [], daemonEndpoints: { kubeletEndpoint: { Port: 0 } }, declaredFeatures: [] } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }

  /** Every later session in that pod is hostile (see HostileSession). */
  setHostile(namespace: string, pod: string, kind: HostileSession): void {
    this.#hostile.set(`${namespace}/${pod}`, kind);
  }

  /** The exit status every later command in that pod reports (0 unless set). */
  setExitCode(namespace: string, pod: string, code: number): void {
    this.#exitCodes.set(`${namespace}/${pod}`, code);
  }

  async stop(): Promise<void> {
    for (const ws of this.#wss.clients) ws.terminate();
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  // The kubelet's path: /exec/{namespace}/{pod}/{container}?command=...&command=...
  #session(req: IncomingMessage): ExecSession | undefined {
    const url = new URL(req.url ?? '/', 'https://kubelet.invalid');
    const [verb, namespace, pod, container] = url.pathname.split('/').slice(1).map(decodeURIComponent);
    if (verb !== 'exec' || !namespace || !pod || !container) return undefined;
    const exitCode = this.#exitCodes.get(`${namespace}/${pod}`) ?? 0;
    const hostile = this.#hostile.get(`${namespace}/${pod}`);
    return { namespace, pod, container, command: url.searchParams.getAll('command'), exitCode, hostile };
  }
}

function frame(channel: number, data: string): Buffer {
  return Buffer.concat([Buffer.from([channel]), Buffer.from(data)]);
}

function hostile(ws: WebSocket, kind: HostileSession): void {
  ws.send(frame(9, HOSTILE_TEXT));
  ws.send(frame(1, HOSTILE_TEXT));
  if (kind === 'invalid-status') {
    ws.send(frame(STATUS_CHANNEL, `{"status": "Success", "message": "${HOSTILE_TEXT}`), () => ws.close(1000));
    return;
  }
  const status = { status: 'Failure', reason: 'NonZeroExitCode', message: HOSTILE_TEXT, details: { causes: 5 } };
  ws.send(frame(STATUS_CHANNEL, JSON.stringify(status)));
  ws.send(frame(1, HOSTILE_TEXT), () => ws.close(1000));
}

// A stand-in for the API server's pods/exec endpoint as the kubelet answers it: a WebSocket
// server speaking the v4/v5 channel protocol. Channel byte 1 = stdout, 2 = stderr, 3 = a
// metav1.Status as JSON. The command picks the behaviour:
//   ["true"] → exit 0; ["exit", "<n>"] → exit n; ["echo"] → stdout/stderr output then exit 0;
//   ["sleep"] → never answers; ["slow", "<ms>"] → exit 0 after ms; ["missing"] → Failure without exit code (InternalError: the runtime could not run it);
//   ["hostile"] → a non-zero exit whose message and exit code carry escape sequences;
//   ["drop"] → the session closes without a status.
// Hostile status channels (what a broken or hostile kubelet or runtime could send):
//   ["bad-json"] → invalid JSON on the status channel; ["unknown-channel"] → a frame on channel 9,
//   then exit 0; ["after-status"] → stdout output after the status; ["odd-causes"] → a status
//   whose details.causes is a number.
import type { IncomingMessage } from 'node:http';
import { createServer } from 'node:http';
import type { Socket } from 'node:net';
import { type WebSocket, WebSocketServer } from 'ws';

export interface ExecServer {
  port: number;
  /** URL path + query of each exec request, and the subprotocol chosen. */
  requests: Array<{ url: string; protocol: string }>;
  /** Resolves once every session accepted so far has closed on the server's side. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

export interface ExecServerOptions {
  /** Subprotocols this "API server" accepts, in preference order. */
  protocols?: string[];
  /** Answer the upgrade with this HTTP status instead (e.g. 403 for missing RBAC). */
  rejectWith?: number;
  /** Open each session this long after the upgrade request (a slow API server or kubelet). */
  openDelayMs?: number;
  /** The body of that refusal (a metav1.Status as kube-apiserver sends it; empty if unset). */
  rejectBody?: string;
}

/** Starts the fixture on 127.0.0.1. */
export async function startExecServer(options: ExecServerOptions = {}): Promise<ExecServer> {
  const accepted = options.protocols ?? ['v5.channel.k8s.io', 'v4.channel.k8s.io'];
  const requests: ExecServer['requests'] = [];
  const open = new Set<WebSocket>();
  const idleWaiters: Array<() => void> = [];
  const delays = new Set<NodeJS.Timeout>();
  const http = createServer((_req, res) => res.writeHead(404).end());
  const sockets = new Set<Socket>();
  http.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (offered) => accepted.find((p) => offered.has(p)) ?? false,
  });
  http.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    if (options.rejectWith) {
      const body = Buffer.from(options.rejectBody ?? '');
      const header = `HTTP/1.1 ${options.rejectWith} Refused\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
      socket.end(Buffer.concat([Buffer.from(header), body]));
      return;
    }
    const delay = setTimeout(() => {
      delays.delete(delay);
      accept(req, socket, head);
    }, options.openDelayMs ?? 0);
    delays.add(delay);
  });
  const accept = (req: IncomingMessage, socket: Socket, head: Buffer): void => {
    if (socket.destroyed) return;
    wss.handleUpgrade(req, socket, head, (ws) => {
      open.add(ws);
      ws.once('close', () => {
        open.delete(ws);
        if (open.size === 0) for (const w of idleWaiters.splice(0)) w();
      });
      requests.push({ url: req.url ?? '', protocol: ws.protocol });
      const query = new URL(req.url ?? '/', 'http://x').searchParams;
      const command = query.getAll('command');
      const send = (channel: number, data: string): void =>
        ws.send(Buffer.concat([Buffer.from([channel]), Buffer.from(data)]));
      const status = (s: object): void => {
        send(3, JSON.stringify(s));
        ws.close(1000);
      };
      switch (command[0]) {
        case 'sleep':
          return;
        case 'slow': {
          // Exit 0 after command[1] ms (a command that takes a while).
          const done = setTimeout(() => status({ status: 'Success' }), Number(command[1]));
          ws.once('close', () => clearTimeout(done));
          return;
        }
        case 'drop':
          // The session ends without a status (the API server or kubelet went away mid-exec).
          return ws.close(1001);
        case 'true':
          return status({ status: 'Success' });
        case 'echo':
          send(1, 'stdout-payload');
          send(2, 'a warning');
          return status({ status: 'Success' });
        case 'hostile':
          // What a container can get into a status: its own text, escapes, a non-numeric code.
          return status({
            status: 'Failure',
            reason: 'NonZeroExitCode',
            message: 'exit status 1: \u001b]0;pwned\u0007',
            details: { causes: [{ reason: 'ExitCode', message: '1\u001b[2Jpwned' }] },
          });
        case 'bad-json':
          send(3, '{"status": "Succ');
          return ws.close(1000);
        case 'unknown-channel':
          send(9, 'surprise');
          return status({ status: 'Success' });
        case 'after-status':
          send(3, JSON.stringify({ status: 'Success' }));
          send(1, 'late output');
          return ws.close(1000);
        case 'odd-causes':
          return status({ status: 'Failure', reason: 'NonZeroExitCode', details: { causes: 5 } });
        case 'exit':
          return status({
            status: 'Failure',
            reason: 'NonZeroExitCode',
            message: `command terminated with non-zero exit code: exit status ${command[1]}`,
            details: { causes: [{ reason: 'ExitCode', message: command[1] }] },
          });
        default:
          return status({
            status: 'Failure',
            reason: 'InternalError',
            message: 'container not found ("nope") \u001b]0;pwned\u0007',
          });
      }
    });
  };
  const port = await new Promise<number>((resolve) =>
    http.listen(0, '127.0.0.1', () => resolve((http.address() as { port: number }).port)),
  );
  return {
    port,
    requests,
    idle: () => new Promise<void>((resolve) => (open.size === 0 ? resolve() : idleWaiters.push(resolve))),
    close: () =>
      new Promise<void>((resolve) => {
        for (const d of delays) clearTimeout(d);
        for (const c of wss.clients) c.terminate();
        for (const s of sockets) s.destroy();
        wss.close();
        http.close(() => resolve());
      }),
  };
}

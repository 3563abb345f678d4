// Real probe targets on 127.0.0.0/8 for the probe tests: HTTP, raw TCP, a blackhole, TLS certs.
// Every helper returns something with close(); tests call it in afterEach/afterAll.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Running {
  host: string;
  port: number;
  close(): Promise<void>;
}

function track(server: Server): () => Promise<void> {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
}

function listen(server: Server, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve((server.address() as { port: number }).port));
  });
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** Starts a node:http server on host with the handler; records every request it saw. */
export async function startHttp(host: string, handler: Handler): Promise<Running & { requests: IncomingMessage[] }> {
  const requests: IncomingMessage[] = [];
  const server = createHttpServer((req, res) => {
    requests.push(req);
    handler(req, res);
  });
  const close = track(server);
  const port = await listen(server, host);
  return { host, port, requests, close };
}

/** Starts an HTTPS server with the given key/cert. */
export async function startHttps(host: string, tls: { key: string; cert: string }, handler: Handler): Promise<Running> {
  const server = createHttpsServer(tls, handler);
  const close = track(server);
  const port = await listen(server, host);
  return { host, port, close };
}

/** Starts a raw TCP server: `onSocket` writes whatever bytes the test wants (for framing edge cases). */
export async function startRaw(
  host: string,
  onSocket: (socket: Socket) => void,
): Promise<Running & { resets: () => number }> {
  let resets = 0;
  const server = createNetServer((socket) => {
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNRESET') resets++;
    });
    onSocket(socket);
  });
  const close = track(server);
  const port = await listen(server, host);
  return { host, port, close, resets: () => resets };
}

/** A port on host that nothing listens on (connects are refused). */
export async function closedPort(host: string): Promise<number> {
  const server = createNetServer();
  const port = await listen(server, host);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * A listener whose accept queue is full and never drained: the kernel drops new SYNs, so a
 * connect hangs until the caller's timeout, like a packet-dropping path. Node always accepts,
 * so a small python3 process holds the socket; it exits when its stdin closes. It prints the
 * port only once the queue is full, read from the listener's TCP_INFO (Linux reports a listener's
 * accept queue length in tcpi_unacked and its limit in tcpi_sacked; full means length > limit).
 */
export async function startBlackhole(host: string): Promise<Running> {
  const script = [
    'import socket, struct, sys, time',
    `s = socket.socket(); s.bind((${JSON.stringify(host)}, 0)); s.listen(0)`,
    'port = s.getsockname()[1]',
    'fill = []',
    'for _ in range(4):',
    '    c = socket.socket(); c.setblocking(False)',
    '    try: c.connect((s.getsockname()[0], port))',
    '    except BlockingIOError: pass',
    '    fill.append(c)',
    'deadline = time.monotonic() + 10',
    'while True:',
    "    queued, limit = struct.unpack_from('=24x2I', s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104))",
    '    if queued > limit: break',
    "    if time.monotonic() > deadline: sys.exit(f'accept queue not full after 10 s: {queued} queued, limit {limit}')",
    '    time.sleep(0.01)',
    'print(port, flush=True)',
    'sys.stdin.read()',
  ].join('\n');
  const child: ChildProcess = spawn('python3', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the blackhole's python3 exited (${code}) before it was ready`)));
    child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
  });
  return {
    host,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.stdin!.end();
        child.kill();
      }),
  };
}

export interface TestCerts {
  /** Self-signed for IP:127.0.0.1 and DNS:gate.test; it is its own CA. */
  key: string;
  cert: string;
  /** An unrelated self-signed CA. */
  otherCa: string;
  cleanup(): void;
}

/** Generates throwaway certificates with openssl into a temp dir. */
export function makeCerts(): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), 'readygate-probes-'));
  const gen = (name: string, cn: string, san: string): void => {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
        '-keyout',
        join(dir, `${name}.key`),
        '-out',
        join(dir, `${name}.crt`),
        '-subj',
        `/CN=${cn}`,
        '-addext',
        `subjectAltName=${san}`,
      ],
      { stdio: 'ignore' },
    );
  };
  gen('server', 'readygate-test', 'IP:127.0.0.1,DNS:gate.test');
  gen('other', 'other-ca', 'DNS:other.test');
  return {
    key: readFileSync(join(dir, 'server.key'), 'utf8'),
    cert: readFileSync(join(dir, 'server.crt'), 'utf8'),
    otherCa: readFileSync(join(dir, 'other.crt'), 'utf8'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

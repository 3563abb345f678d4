// Hostile probe targets: tenant code that misbehaves on purpose, for the HTTP prober's tests
// (test/unit/probes/hostile.test.ts) and for its benchmark (bench/probes/hostile.ts, which runs
// them in a child process through bench/probes/hostile-farm.ts). Each target is a plain `net`
// (or `tls`) server on 127.0.0.1 writing raw bytes, so it can break HTTP in ways a real server
// library would refuse to. A stand-in for the API server or a metadata endpoint listens on
// 127.0.0.2 and counts its connections: cross-host redirects point there, and it must see none.
// Nothing here ever connects anywhere; the prober under test is the only client.
//
// Every endless writer has a byte budget and honours backpressure; every timer belongs to one
// connection and is cleared when it closes; close() destroys every connection and server.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import { gzipSync } from 'node:zlib';
import { MAX_BODY_BYTES } from '../../src/probes/http.ts';
import { MAX_HEAD_BYTES, MAX_HEADER_COUNT, MAX_INTERIM_RESPONSES } from '../../src/probes/http-parser.ts';

/** Text every hostile target puts in what it sends: a probe result's message must never contain it. */
export const HOSTILE_MARKER = 'hostile-marker';

/** What a correct prober reports for the target (see plainTargets and startHostileFarm). */
export type HostileExpectation = 'success' | 'failure' | 'timeout';

export interface HostileTarget {
  name: string;
  scheme: 'HTTP' | 'HTTPS';
  host: string;
  port: number;
  /** Request path to probe (one server may serve several targets by path). */
  path: string;
  expect: HostileExpectation;
  /** What the target does, in a few words (for reports). */
  does: string;
}

export interface HostileFarmOptions {
  /** Address of the hostile targets; default 127.0.0.1. */
  host?: string;
  /** Address of the API-server / metadata stand-in; must differ from host; default 127.0.0.2. */
  standInHost?: string;
  /** Slowloris: milliseconds between header bytes; default 5. */
  slowlorisByteMs?: number;
  /**
   * The largest allowed answer, trickled: its head goes out in pieces of `pieceBytes` every
   * `pieceMs`, but for its last `holdBack` bytes, which wait with the body for release()
   * (holdBack 0: nothing waits). Default: the whole answer at once.
   */
  largest?: { pieceBytes: number; pieceMs: number; holdBack: number };
}

export interface HostileFarm {
  targets: HostileTarget[];
  /** The target of that name; throws for an unknown name. */
  target(name: string): HostileTarget;
  /** The API-server / metadata stand-in that cross-host redirects point to. */
  standIn: { host: string; port: number; connections(): number };
  /** Connections each target's server accepted, by target name (targets sharing a server share a count). */
  connections(name: string): number;
  /** Largest-answer connections whose head is out but for its held-back bytes, waiting for release(). */
  held(): number;
  /** Bytes of the largest answer's head that a held connection has written. */
  heldBytes: number;
  /** Sends the rest of every held largest answer, and of every one that reaches the hold later. */
  release(): void;
  close(): Promise<void>;
}

// A budget for the "endless" writers: far beyond any cap of the prober, yet finite.
const ENDLESS_BUDGET = 256 * 1024 * 1024;
/** The huge header: 100 MiB of one header value, never ended by an empty line. */
export const HUGE_HEADER_BYTES = 100 * 1024 * 1024;
/** The gzip bomb inflates to this many bytes (a prober that decompressed it would need them). */
export const GZIP_BOMB_INFLATED_BYTES = 4 * 1024 * 1024 * 1024;
const GZIP_MEMBER_INFLATED = 16 * 1024 * 1024;
// A client that stops sending its request head within this many bytes is not a prober.
const MAX_REQUEST_HEAD = 16 * 1024;
// Idle connections (the prober went away without a RST) are dropped after this long.
const IDLE_MS = 120_000;

/** One accepted connection: its timers die with it. */
interface Conn {
  socket: Socket;
  later(ms: number, fn: () => void): void;
}

type Behaviour = (conn: Conn, path: string) => void;

/** Starts every hostile target and the stand-in; close() stops them all. */
export async function startHostileFarm(options: HostileFarmOptions = {}): Promise<HostileFarm> {
  const host = options.host ?? '127.0.0.1';
  const standInHost = options.standInHost ?? '127.0.0.2';
  if (standInHost === host) throw new Error('the stand-in must listen on another address than the targets');
  const t = options.largest;
  if (t && !(t.pieceBytes > 0 && t.pieceMs >= 0 && t.holdBack >= 0 && t.holdBack < MAX_HEAD_BYTES)) {
    throw new Error(`largest: want pieceBytes > 0, pieceMs >= 0, 0 <= holdBack < ${MAX_HEAD_BYTES}`);
  }
  const farm = new Farm();
  try {
    return await farm.start(host, standInHost, options);
  } catch (err) {
    await farm.close();
    throw err;
  }
}

class Farm {
  private readonly servers: Server[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly counts = new Map<string, () => number>();
  private readonly waiting = new Set<() => void>();
  private released = false;
  private closed = false;

  async start(host: string, standInHost: string, o: HostileFarmOptions): Promise<HostileFarm> {
    const targets: HostileTarget[] = [];
    const add = (t: Omit<HostileTarget, 'host'>, count: () => number) => {
      targets.push({ ...t, host });
      this.counts.set(t.name, count);
    };
    const standIn = await this.listenHttp(standInHost, (c) => c.socket.end(answer(200, 'stand-in reached')));
    const largest = largestAnswer();
    const plain = plainTargets(o, (c) => this.sendLargest(c, largest, o.largest));
    for (const { name, expect, does, behaviour } of plain) {
      const s = await this.listenHttp(host, behaviour);
      add({ name, scheme: 'HTTP', port: s.port, path: '/', expect, does }, s.connections);
    }
    const redirects = await this.listenHttp(host, (c, path) => redirect(c, path, host, standInHost, standIn.port));
    for (const [path, does] of REDIRECTS) {
      const name = `redirect-${path.slice(1)}`;
      add({ name, scheme: 'HTTP', port: redirects.port, path, expect: 'success', does }, redirects.connections);
    }
    const stall = await this.listenRaw(host, (c) => c.socket.resume());
    add(tlsTarget('tls-stall', stall.port, 'timeout', 'accepts TCP, never answers the ClientHello'), stall.connections);
    const chain = await this.listenTlsHugeChain(host);
    add(tlsTarget('tls-huge-chain', chain.port, 'failure', 'a 1 MiB certificate chain'), chain.connections);

    return {
      targets,
      target: (name) => {
        const t = targets.find((x) => x.name === name);
        if (!t) throw new Error(`no hostile target named ${name}`);
        return t;
      },
      standIn: { host: standInHost, port: standIn.port, connections: standIn.connections },
      connections: (name) => this.counts.get(name)?.() ?? 0,
      held: () => this.waiting.size,
      heldBytes: largest.head.length - (o.largest?.holdBack ?? 0),
      release: () => this.release(),
      close: () => this.close(),
    };
  }

  /** Trickles the head (if asked), holds its last bytes until release(), then sends the rest. */
  private sendLargest(c: Conn, a: { head: Buffer; body: Buffer }, t: HostileFarmOptions['largest']): void {
    if (!t) {
      c.socket.write(a.head);
      c.socket.end(a.body);
      return;
    }
    const holdAt = a.head.length - t.holdBack;
    let sent = 0;
    const finish = () => {
      this.waiting.delete(finish);
      if (c.socket.destroyed) return;
      c.socket.write(a.head.subarray(sent));
      c.socket.end(a.body);
    };
    const tick = () => {
      if (c.socket.destroyed) return;
      const n = Math.min(t.pieceBytes, holdAt - sent);
      c.socket.write(a.head.subarray(sent, sent + n));
      sent += n;
      if (sent < holdAt) c.later(t.pieceMs, tick);
      else if (this.released || t.holdBack === 0) finish();
      else {
        this.waiting.add(finish);
        c.socket.once('close', () => this.waiting.delete(finish));
      }
    };
    tick();
  }

  private release(): void {
    this.released = true;
    for (const finish of [...this.waiting]) finish();
  }

  private track(server: Server, onSocket: (conn: Conn) => void): () => number {
    let count = 0;
    server.on('connection', (socket: Socket) => {
      count++;
      this.sockets.add(socket);
      const timers = new Set<NodeJS.Timeout>();
      socket.on('error', () => {}); // the prober resets connections: that is expected
      socket.setNoDelay(true);
      socket.setTimeout(IDLE_MS, () => socket.destroy());
      socket.once('close', () => {
        this.sockets.delete(socket);
        for (const t of timers) clearTimeout(t);
        timers.clear();
      });
      const later = (ms: number, fn: () => void) => {
        if (socket.destroyed || this.closed) return;
        const t = setTimeout(() => {
          timers.delete(t);
          fn();
        }, ms);
        timers.add(t);
      };
      onSocket({ socket, later });
    });
    this.servers.push(server);
    return () => count;
  }

  /** A raw server that does nothing of its own: onSocket runs as soon as a connection is accepted. */
  private async listenRaw(
    host: string,
    onSocket: (c: Conn) => void,
  ): Promise<{ port: number; connections: () => number }> {
    const server = createNetServer();
    const connections = this.track(server, onSocket);
    return { port: await listen(server, host), connections };
  }

  /** A raw server that reads the request head (bounded), then hands the path to the behaviour. */
  private listenHttp(host: string, behaviour: Behaviour): Promise<{ port: number; connections: () => number }> {
    return this.listenRaw(host, (c) => {
      let head = '';
      const onData = (d: Buffer) => {
        head += d.toString('latin1');
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) {
          if (head.length > MAX_REQUEST_HEAD) c.socket.destroy();
          return;
        }
        c.socket.off('data', onData);
        c.socket.resume(); // whatever else the client sends is dropped
        behaviour(c, /^GET (\S+) HTTP\/1\.1\r\n/.exec(head)?.[1] ?? '/');
      };
      c.socket.on('data', onData);
    });
  }

  private async listenTlsHugeChain(host: string): Promise<{ port: number; connections: () => number }> {
    const { key, chain } = hugeChain();
    const server = createTlsServer({ key, cert: chain }, (s) => {
      s.on('error', () => {});
      s.end(answer(200, 'handshake survived'));
    });
    server.on('tlsClientError', () => {}); // the prober gives up on the chain: expected
    const connections = this.track(server, () => {});
    return { port: await listen(server, host), connections };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.waiting.clear();
    for (const s of this.sockets) s.destroy();
    await Promise.all(this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

interface PlainTarget {
  name: string;
  expect: HostileExpectation;
  does: string;
  behaviour: Behaviour;
}

/** The targets that break HTTP/1.1 itself, each a server of its own. */
function plainTargets(o: HostileFarmOptions, sendLargest: Behaviour): PlainTarget[] {
  const bomb = gzipBomb();
  const chunked = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n';
  const t = (name: string, expect: HostileExpectation, does: string, behaviour: Behaviour) => ({
    name,
    expect,
    does,
    behaviour,
  });
  return [
    // The deadline ends it: a header byte every few ms, never an empty line.
    t('slowloris', 'timeout', 'one header byte every few ms, never finishing', (c) =>
      slowloris(c, o.slowlorisByteMs ?? 5),
    ),
    // As fast as the prober reads: the cap on interim responses must end it.
    t('endless-1xx', 'failure', '100 Continue and 103 Early Hints forever', (c) =>
      pump(c.socket, repeatTo(INTERIM, 16 * 1024), ENDLESS_BUDGET),
    ),
    // Few enough 1xx, each under the head cap: the cap on all heads together must end it.
    t('fat-1xx', 'failure', `${MAX_INTERIM_RESPONSES} Early Hints of 20 KiB each, then a 200`, (c) =>
      c.socket.end(fatInterim()),
    ),
    t('huge-header', 'failure', '100 MiB header value, never ending the head', (c) => {
      c.socket.write(`HTTP/1.1 200 OK\r\nX-${HOSTILE_MARKER}: `);
      pump(c.socket, Buffer.alloc(64 * 1024, 'a'), HUGE_HEADER_BYTES);
    }),
    t('header-count', 'failure', 'more header fields than the count cap, in fewer bytes than the head cap', (c) =>
      c.socket.end(headerFlood()),
    ),
    t('gzip-bomb', 'success', 'Content-Encoding: gzip body inflating to 4 GiB', (c) => {
      c.socket.write(bomb.head);
      pump(c.socket, bomb.member, bomb.bytes);
    }),
    t('chunk-extension', 'failure', 'one chunk-size line with an endless extension', (c) => {
      c.socket.write(`${chunked}1;${HOSTILE_MARKER}=`);
      pump(c.socket, Buffer.alloc(64 * 1024, 'e'), ENDLESS_BUDGET);
    }),
    t('chunk-framing', 'failure', 'endless 1-byte chunks, each behind a 4,000-byte extension', (c) => {
      c.socket.write(chunked);
      const unit = Buffer.from(`1;${HOSTILE_MARKER}=${'e'.repeat(4000)}\r\nx\r\n`);
      pump(c.socket, repeatTo(unit, 64 * 1024), ENDLESS_BUDGET);
    }),
    t('endless-trailers', 'failure', 'a chunked body, then trailer fields forever', (c) => {
      c.socket.write(`${chunked}2\r\nok\r\n0\r\n`);
      pump(c.socket, repeatTo(Buffer.from(`X-Trailer: ${HOSTILE_MARKER}\r\n`), 16 * 1024), ENDLESS_BUDGET);
    }),
    t('reset-mid-header', 'failure', 'half a header line, then RST', (c) => {
      c.socket.write(`HTTP/1.1 200 OK\r\nX-${HOSTILE_MARKER}: hal`, () => c.socket.resetAndDestroy());
    }),
    t('largest-answer', 'success', 'the largest head the caps allow, then more body than the body cap', sendLargest),
  ];
}

function listen(server: Server, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: 0, backlog: 1024 }, () => resolve((server.address() as { port: number }).port));
  });
}

function tlsTarget(name: string, port: number, expect: HostileExpectation, does: string): Omit<HostileTarget, 'host'> {
  return { name, scheme: 'HTTPS', port, path: '/', expect, does };
}

function answer(status: number, body: string): string {
  return `HTTP/1.1 ${status} X\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}

/** Writes `chunk` again and again until `budget` bytes are out or the socket is gone. */
function pump(socket: Socket, chunk: Buffer, budget: number): void {
  let left = budget;
  const go = (): void => {
    while (left > 0 && !socket.destroyed) {
      const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
      left -= piece.length;
      if (!socket.write(piece)) {
        socket.once('drain', go);
        return;
      }
    }
  };
  go();
}

function repeatTo(unit: Buffer, size: number): Buffer {
  return Buffer.concat(Array(Math.max(1, Math.floor(size / unit.length))).fill(unit));
}

const INTERIM = Buffer.from(
  `HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </${HOSTILE_MARKER}.css>; rel=preload\r\n\r\n`,
);

// Early Hints heads of 20 KiB each, as many as the prober skips: over MAX_HEAD_BYTES together.
function fatInterim(): Buffer {
  const hint = `HTTP/1.1 103 Early Hints\r\nLink: </${HOSTILE_MARKER}.css>; rel=preload; x=${'l'.repeat(20 * 1024)}\r\n\r\n`;
  if (hint.length * MAX_INTERIM_RESPONSES <= MAX_HEAD_BYTES)
    throw new Error('fat-1xx no longer exceeds MAX_HEAD_BYTES');
  return Buffer.from(`${hint.repeat(MAX_INTERIM_RESPONSES)}HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok`);
}

// A status line, then one byte of a never-ending run of header lines at a time.
function slowloris(c: Conn, byteMs: number): void {
  const text = Buffer.from(`HTTP/1.1 200 OK\r\n${`X-${HOSTILE_MARKER}: slow\r\n`.repeat(4096)}`);
  // Stays under the head cap: what ends it must be the prober's deadline.
  const limit = Math.min(text.length, MAX_HEAD_BYTES / 2);
  let i = 0;
  const tick = () => {
    if (c.socket.destroyed || i >= limit) return;
    c.socket.write(text.subarray(i, i + 1));
    i++;
    c.later(byteMs, tick);
  };
  tick();
}

// Tiny header lines, more than MAX_HEADER_COUNT of them, the whole head still under MAX_HEAD_BYTES.
function headerFlood(): Buffer {
  const status = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n';
  const line = 'h:1\r\n';
  const count = Math.floor((MAX_HEAD_BYTES - status.length - 2) / line.length);
  if (count <= MAX_HEADER_COUNT) throw new Error('MAX_HEADER_COUNT tiny headers no longer fit in MAX_HEAD_BYTES');
  return Buffer.from(`${status}${line.repeat(count)}\r\nok`);
}

// Gzip members concatenated are one valid gzip stream; one member of 16 MiB of zeros is ~16 KiB.
function gzipBomb(): { head: Buffer; member: Buffer; bytes: number } {
  const member = gzipSync(Buffer.alloc(GZIP_MEMBER_INFLATED), { level: 9 });
  const bytes = member.length * (GZIP_BOMB_INFLATED_BYTES / GZIP_MEMBER_INFLATED);
  const head = Buffer.from(
    `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: ${bytes}\r\n\r\n`,
  );
  return { head, member, bytes };
}

/** The cross-host redirects, by request path: each Location names the stand-in in another spelling. */
const REDIRECTS: ReadonlyArray<readonly [string, string]> = [
  ['/absolute', '302 to http://<stand-in>/'],
  ['/scheme-relative', '301 to //<stand-in>/'],
  ['/integer-host', '307 to the stand-in as one 32-bit integer'],
  ['/userinfo', '308 to http://<own host>@<stand-in>/'],
  ['/https', '302 to https://<stand-in>/'],
  ['/after-hop', '302 to /absolute on the same host, which redirects to the stand-in'],
];

function redirect(c: Conn, path: string, host: string, standIn: string, port: number): void {
  const [a, b, cc, d] = standIn.split('.').map(Number) as [number, number, number, number];
  const integer = ((a << 24) >>> 0) + (b << 16) + (cc << 8) + d;
  const to: Record<string, [number, string]> = {
    '/absolute': [302, `http://${standIn}:${port}/`],
    '/scheme-relative': [301, `//${standIn}:${port}/`],
    '/integer-host': [307, `http://${integer}:${port}/`],
    '/userinfo': [308, `http://${host}@${standIn}:${port}/`],
    '/https': [302, `https://${standIn}:${port}/`],
    '/after-hop': [302, '/absolute'],
  };
  const [status, location] = to[path] ?? [404, ''];
  const body = `${HOSTILE_MARKER} redirect`;
  c.socket.end(
    `HTTP/1.1 ${status} X\r\n${location ? `Location: ${location}\r\n` : ''}Content-Length: ${body.length}\r\n\r\n${body}`,
  );
}

/**
 * The largest answer the caps allow: a head of exactly MAX_HEAD_BYTES (status line to the empty
 * line) in MAX_HEADER_COUNT header fields, then a body of twice MAX_BODY_BYTES.
 */
function largestAnswer(): { head: Buffer; body: Buffer } {
  const body = Buffer.alloc(MAX_BODY_BYTES * 2, 'b');
  const status = 'HTTP/1.1 200 OK\r\n';
  const fixed = `Content-Length: ${body.length}\r\n`;
  const fillers = MAX_HEADER_COUNT - 1;
  const room = MAX_HEAD_BYTES - status.length - fixed.length - 2; // 2: the empty line's CRLF
  const per = Math.floor(room / fillers);
  const lines = [status, fixed];
  for (let i = 0; i < fillers; i++) {
    const name = `X-${i}: `;
    // The first line also takes what the even split left over.
    const size = per + (i === 0 ? room - per * fillers : 0) - name.length - 2;
    if (size < 0) throw new Error('MAX_HEADER_COUNT header lines do not fit in MAX_HEAD_BYTES');
    lines.push(`${name}${'v'.repeat(size)}\r\n`);
  }
  const head = Buffer.from(`${lines.join('')}\r\n`, 'latin1');
  if (head.length !== MAX_HEAD_BYTES) throw new Error(`largest head is ${head.length} bytes, not ${MAX_HEAD_BYTES}`);
  return { head, body };
}

// One self-signed certificate (openssl, as the probe tests' servers.ts does), repeated until the
// chain is over 1 MiB: ten times what OpenSSL accepts from a peer (max_cert_list, 100 KiB).
function hugeChain(): { key: string; chain: string } {
  const dir = mkdtempSync(join(tmpdir(), 'readygate-hostile-'));
  try {
    execFileSync(
      'openssl',
      [
        ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1'],
        ...['-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-subj', `/CN=${HOSTILE_MARKER}`],
      ],
      { stdio: 'ignore' },
    );
    const cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
    const der = Buffer.from(cert.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64').length;
    return { key: readFileSync(join(dir, 'key.pem'), 'utf8'), chain: cert.repeat(Math.ceil((1024 * 1024) / der)) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

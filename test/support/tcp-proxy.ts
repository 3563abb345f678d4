// A TCP proxy between the operator and kube-apiserver that can freeze or cut connections, to play
// a network partition on loopback. Freezing models a partition faithfully enough for fencing:
// while frozen, nothing crosses in either direction and bytes wait as they would in the sender's
// kernel; a side that gives up and closes its socket discards what it had not delivered (a reset
// connection's send buffer is dropped, never retransmitted), so the other side never sees it.
// Upstream connections leave from `localAddress`, so the audit log tells this client's requests
// (sourceIPs) from those of a client connected directly.
import { connect, createServer, type Server, type Socket } from 'node:net';

interface Pipe {
  client: Socket;
  upstream: Socket | undefined;
  held: { up: Buffer[]; down: Buffer[] };
}

export class TcpProxy {
  readonly port: number;
  readonly #server: Server;
  readonly #pipes = new Set<Pipe>();
  readonly #target: { host: string; port: number; localAddress?: string };
  #frozen = false;
  /** Bytes discarded because their sender closed while frozen. */
  dropped = 0;

  private constructor(server: Server, port: number, target: { host: string; port: number; localAddress?: string }) {
    this.#server = server;
    this.port = port;
    this.#target = target;
  }

  /** Listens on 127.0.0.1 (a free port) and forwards to host:port. */
  static async start(target: { host: string; port: number; localAddress?: string }): Promise<TcpProxy> {
    let proxy: TcpProxy | undefined;
    const server = createServer((client) => proxy?.accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    if (!address || typeof address === 'string') throw new Error('proxy has no port');
    proxy = new TcpProxy(server, address.port, target);
    return proxy;
  }

  /** Stops forwarding in both directions (new connections wait too). */
  freeze(): void {
    this.#frozen = true;
  }

  /** Resumes forwarding, delivering what waited. */
  thaw(): void {
    this.#frozen = false;
    for (const pipe of this.#pipes) this.#flush(pipe);
  }

  /** Resets every connection now (both sides see it closed), as a middlebox or an API server restart would. */
  cut(): void {
    for (const pipe of [...this.#pipes]) this.#close(pipe);
  }

  /** Connections alive now. */
  connections(): number {
    return this.#pipes.size;
  }

  async stop(): Promise<void> {
    for (const pipe of this.#pipes) this.#close(pipe);
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  accept(client: Socket): void {
    const pipe: Pipe = { client, upstream: undefined, held: { up: [], down: [] } };
    this.#pipes.add(pipe);
    client.on('data', (d) => this.#send(pipe, 'up', d));
    client.on('close', () => this.#close(pipe));
    client.on('error', () => this.#close(pipe));
    if (!this.#frozen) this.#connect(pipe);
  }

  #connect(pipe: Pipe): void {
    const upstream = connect({
      host: this.#target.host,
      port: this.#target.port,
      localAddress: this.#target.localAddress,
    });
    pipe.upstream = upstream;
    upstream.on('data', (d) => this.#send(pipe, 'down', d));
    upstream.on('close', () => this.#close(pipe));
    upstream.on('error', () => this.#close(pipe));
  }

  #send(pipe: Pipe, dir: 'up' | 'down', data: Buffer): void {
    if (this.#frozen || (dir === 'up' && !pipe.upstream)) {
      pipe.held[dir].push(data);
      return;
    }
    (dir === 'up' ? pipe.upstream : pipe.client)?.write(data);
  }

  #flush(pipe: Pipe): void {
    if (!pipe.upstream) this.#connect(pipe);
    for (const d of pipe.held.up.splice(0)) pipe.upstream?.write(d);
    for (const d of pipe.held.down.splice(0)) pipe.client.write(d);
  }

  #close(pipe: Pipe): void {
    if (!this.#pipes.delete(pipe)) return;
    for (const d of [...pipe.held.up, ...pipe.held.down]) this.dropped += d.length;
    pipe.held = { up: [], down: [] };
    pipe.client.destroy();
    pipe.upstream?.destroy();
  }
}

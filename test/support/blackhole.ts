// A listener that never accepts: a child Node process listens on the given addresses with a
// backlog of 1 and blocks its event loop (Atomics.wait, no CPU); the parent fills each accept
// queue, so the kernel drops every further SYN and a prober's connect times out, as it does when
// the operator is cut off from the pods. Loopback addresses only; killed on stop().
import { type ChildProcess, spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';

// The child listens, reports, and blocks before it could accept anything; the parent then fills
// each accept queue (backlog 1 holds two connections; 0 would mean Node's default, 511) and keeps those connections open.
const SCRIPT = `
const net = require('node:net');
const fs = require('node:fs');
const targets = JSON.parse(process.argv[1]);
let listening = 0;
for (const t of targets) {
  const server = net.createServer((s) => s.on('error', () => {}));
  server.listen({ host: t.host, port: t.port, backlog: 1 }, () => {
    if (++listening < targets.length) return;
    fs.writeSync(1, 'ready\\n');
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
  });
}
`;

export class Blackhole {
  readonly #child: ChildProcess;
  readonly #fillers: Socket[];
  private constructor(child: ChildProcess, fillers: Socket[]) {
    this.#child = child;
    this.#fillers = fillers;
  }

  /** Starts listening on every host:port and resolves once they all swallow connections. */
  static async start(targets: { host: string; port: number }[]): Promise<Blackhole> {
    for (const t of targets) if (!t.host.startsWith('127.')) throw new Error(`not a loopback address: ${t.host}`);
    const child = spawn(process.execPath, ['-e', SCRIPT, JSON.stringify(targets)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`blackhole exited (${code})`)));
      child.stdout?.on('data', (d: Buffer) => {
        if (d.toString().includes('ready')) resolve();
      });
    });
    const fillers: Socket[] = [];
    for (const t of targets) {
      for (let i = 0; i < 4; i++) fillers.push(connect({ host: t.host, port: t.port }).on('error', () => {}));
    }
    return new Blackhole(child, fillers);
  }

  async stop(): Promise<void> {
    for (const s of this.#fillers) s.destroy();
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.#child.once('exit', resolve));
    this.#child.kill('SIGKILL');
    await exited;
  }
}

// A listener that never accepts: a child Node process listens on the given addresses with a
// backlog of 0, fills each accept queue itself, then blocks its event loop (Atomics.wait, no
// CPU), so the kernel drops every further SYN and a prober's connect times out, as it does when
// the operator is cut off from the pods. Loopback addresses only; killed on stop().
import { type ChildProcess, spawn } from 'node:child_process';

const SCRIPT = `
const net = require('node:net');
const targets = JSON.parse(process.argv[1]);
let listening = 0;
for (const t of targets) {
  net.createServer().listen({ host: t.host, port: t.port, backlog: 0 }, () => {
    for (let i = 0; i < 2; i++) net.connect({ host: t.host, port: t.port }).on('error', () => {});
    if (++listening === targets.length) setTimeout(() => {
      process.stdout.write('ready\\n');
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
    }, 200);
  });
}
`;

export class Blackhole {
  readonly #child: ChildProcess;
  private constructor(child: ChildProcess) {
    this.#child = child;
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
    return new Blackhole(child);
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.#child.once('exit', resolve));
    this.#child.kill('SIGKILL');
    await exited;
  }
}

// A listener that never accepts: a child Node process listens on the given addresses with a
// backlog of 1 and blocks its event loop (Atomics.wait, no CPU); the parent fills each accept
// queue, so the kernel drops every further SYN and a prober's connect times out, as it does when
// the operator is cut off from the pods. open() ends the outage without a gap: the same child
// starts accepting (a connect then succeeds), as a healed network would, where closing it and
// listening anew would refuse connections in between. Loopback addresses only; killed on stop().
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

// The child listens, reports, and blocks before it could accept anything; the parent then fills
// each accept queue (backlog 1 holds two connections; 0 would mean Node's default, 511) and keeps those connections open.
const SCRIPT = `
const net = require('node:net');
const fs = require('node:fs');
const targets = JSON.parse(process.argv[1]);
const openFlag = process.argv[2];
let listening = 0;
for (const t of targets) {
  const server = net.createServer((s) => s.on('error', () => {}).end());
  server.listen({ host: t.host, port: t.port, backlog: 1 }, () => {
    if (++listening < targets.length) return;
    fs.writeSync(1, 'ready\\n');
    // Blocked, a few ms at a time (no CPU), until the parent creates the flag; bounded to 10 min.
    const cell = new Int32Array(new SharedArrayBuffer(4));
    for (let i = 0; i < 120000 && !fs.existsSync(openFlag); i++) Atomics.wait(cell, 0, 0, 5);
  });
}
`;

export class Blackhole {
  readonly #child: ChildProcess;
  readonly #fillers: Socket[];
  readonly #openFlag: string;
  private constructor(child: ChildProcess, fillers: Socket[], openFlag: string) {
    this.#child = child;
    this.#fillers = fillers;
    this.#openFlag = openFlag;
  }

  /** Ends the outage: the listeners start accepting (and closing) connections, with no refusal in between. */
  open(): void {
    writeFileSync(this.#openFlag, '');
  }

  /** Starts listening on every host:port and resolves once they all swallow connections. */
  static async start(targets: { host: string; port: number }[]): Promise<Blackhole> {
    for (const t of targets) if (!t.host.startsWith('127.')) throw new Error(`not a loopback address: ${t.host}`);
    const openFlag = join(mkdtempSync(join(tmpdir(), 'blackhole-')), 'open');
    const child = spawn(process.execPath, ['-e', SCRIPT, JSON.stringify(targets), openFlag], {
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
    return new Blackhole(child, fillers, openFlag);
  }

  async stop(): Promise<void> {
    for (const s of this.#fillers) s.destroy();
    rmSync(dirname(this.#openFlag), { recursive: true, force: true });
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.#child.once('exit', resolve));
    this.#child.kill('SIGKILL');
    await exited;
  }
}

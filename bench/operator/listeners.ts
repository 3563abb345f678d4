// The pods' apps for the operator figures: one child process with an HTTP listener per loopback
// address, all on the same port, answering 200 "ok" with `Connection: close`. Thousands of pods
// share a few hundred addresses (the operator keys targets by pod UID, so that is fine). The
// parent takes addresses down (the listener closes: probes are refused at once) and up again
// through JSON lines on stdin; the child answers each command once it is done. It stops when its
// stdin closes (the parent died), on SIGTERM, or after maxSeconds whatever happens.
//   child:  node bench/operator/listeners.ts '{"addresses":["127.50.0.1",...],"maxSeconds":3600}'
import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** A tracked address's longest time between probes since a moment (ListenerFarm.gaps). */
export interface ProbeGap {
  longestMs: number;
  /** No probe since the moment: longestMs runs to now and is still growing. */
  open: boolean;
}

export interface ListenerFarm {
  port: number;
  /**
   * For each tracked address (one pod each): the longest interval between consecutive requests
   * that ends after `since` (ms since the epoch), or runs from the last request to now.
   */
  gaps(since: number): Promise<Record<string, ProbeGap>>;
  /** Closes the listeners of these addresses; resolves once they refuse connections. */
  down(addresses: string[]): Promise<void>;
  /** Opens them again. */
  up(addresses: string[]): Promise<void>;
  stop(): Promise<void>;
  pid: number;
}

/** `count` addresses 127.<second>.x.y, starting at 127.<second>.0.1, skipping .0 and .255. */
export function addressBlock(second: number, count: number): string[] {
  const out: string[] = [];
  for (let n = 1; out.length < count; n++) {
    const x = Math.floor(n / 256);
    const y = n % 256;
    if (y === 0 || y === 255) continue;
    if (x > 255) throw new Error('address block exhausted');
    out.push(`127.${second}.${x}.${y}`);
  }
  return out;
}

/**
 * Pure: the longest interval between consecutive request times (ascending, ms) that ends after
 * `since`, counting the one from the last request to `now`: how long the pod went unprobed
 * across the moment `since` (a kill), and open when nothing came after it.
 */
export function longestGap(times: readonly number[], since: number, now: number): ProbeGap {
  let longestMs = 0;
  for (let i = 1; i < times.length; i++) {
    if (times[i]! > since) longestMs = Math.max(longestMs, times[i]! - times[i - 1]!);
  }
  const last = times.at(-1);
  const open = last === undefined || last <= since;
  // Since the last request (or the moment, if none came before it) to now: still unprobed.
  if (open) longestMs = Math.max(longestMs, now - (last ?? since));
  return { longestMs, open };
}

/** Requests kept per tracked address: hours of probes at a 10 s period. */
const TRACKED_TIMES = 4096;

/**
 * Starts the child and resolves once every listener is up. `tracked` addresses (each one pod's)
 * have their request times kept, for `gaps`.
 */
export async function startListenerFarm(
  addresses: string[],
  maxSeconds = 3600,
  tracked: string[] = [],
): Promise<ListenerFarm> {
  const child: ChildProcess = spawn(
    process.execPath,
    [fileURLToPath(import.meta.url), JSON.stringify({ addresses, maxSeconds, tracked })],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  type Reply = { ok: boolean; error?: string; gaps?: Record<string, ProbeGap> };
  const waiting = new Map<number, (reply: Reply) => void>();
  let nextId = 1;
  const lines = createInterface({ input: child.stdout! });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code, signal) =>
      reject(new Error(`listener farm exited (${code ?? signal}) before it was up`)),
    );
    lines.on('line', (line) => {
      const msg = JSON.parse(line) as Partial<Reply> & { ready?: boolean; port?: number; id?: number };
      if (msg.ready) resolve(msg.port!);
      else if (msg.id !== undefined) {
        waiting.get(msg.id)?.({ ok: msg.ok ?? false, error: msg.error, gaps: msg.gaps });
        waiting.delete(msg.id);
      }
    });
  });
  const command = (op: 'down' | 'up' | 'gaps', addrs: string[], since = 0) =>
    new Promise<Reply>((resolve, reject) => {
      const id = nextId++;
      waiting.set(id, (r) => (r.ok ? resolve(r) : reject(new Error(`listener farm ${op}: ${r.error}`))));
      child.stdin!.write(`${JSON.stringify({ id, op, addrs, since })}\n`);
    });
  return {
    port,
    pid: child.pid!,
    gaps: async (since) => (await command('gaps', [], since)).gaps ?? {},
    down: async (a) => void (await command('down', a)),
    up: async (a) => void (await command('up', a)),
    stop: async () => {
      process.off('exit', killOnExit);
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.stdin!.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    },
  };
}

// ---- the child ----

async function childMain(arg: string): Promise<void> {
  const { addresses, maxSeconds, tracked } = JSON.parse(arg) as {
    addresses: string[];
    maxSeconds: number;
    tracked?: string[];
  };
  const hardStop = setTimeout(() => process.exit(0), maxSeconds * 1000);
  hardStop.unref();
  const times = probeTimes(tracked ?? []);
  const handler: http.RequestListener = (req, res) => {
    times.note(req.socket.localAddress);
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '3', connection: 'close' });
    res.end('ok\n');
  };
  const servers = new Map<string, http.Server>();
  const open = (host: string, port: number) =>
    new Promise<http.Server>((resolve, reject) => {
      const s = http.createServer({ keepAlive: false }, handler);
      s.once('error', reject);
      s.listen({ host, port, backlog: 4096 }, () => {
        s.off('error', reject);
        resolve(s);
      });
    });
  const close = (s: http.Server) =>
    new Promise<void>((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    });

  // One port for every address: take a free one on the first address, then bind the others to
  // it; if one is taken there, start over with another port.
  let port = 0;
  for (let attempt = 0; ; attempt++) {
    const first = await open(addresses[0]!, 0);
    port = (first.address() as AddressInfo).port;
    servers.set(addresses[0]!, first);
    try {
      for (const a of addresses.slice(1)) servers.set(a, await open(a, port));
      break;
    } catch (err) {
      await Promise.all([...servers.values()].map(close));
      servers.clear();
      if (attempt >= 5) throw err;
    }
  }
  process.stdout.write(`${JSON.stringify({ ready: true, port })}\n`);
  // Addresses go down and up again on the same port.
  const down = async (a: string) => {
    const s = servers.get(a);
    servers.delete(a);
    if (s) await close(s);
  };
  const up = async (a: string) => {
    if (!servers.has(a)) servers.set(a, await open(a, port));
  };
  serveCommands(times, down, up);
}

/** The request times of the tracked addresses (one pod each), at most TRACKED_TIMES each. */
function probeTimes(tracked: string[]) {
  const times = new Map<string, number[]>(tracked.map((a) => [a, []]));
  return {
    note(address: string | undefined): void {
      const seen = times.get(address ?? '');
      if (!seen) return;
      seen.push(Date.now());
      if (seen.length > TRACKED_TIMES) seen.splice(0, seen.length - TRACKED_TIMES);
    },
    gaps(since: number): Record<string, ProbeGap> {
      const now = Date.now();
      return Object.fromEntries([...times].map(([a, t]) => [a, longestGap(t, since, now)]));
    },
  };
}

/** Answers the parent's commands, one JSON line each, until its stdin closes or a signal comes. */
function serveCommands(
  times: ReturnType<typeof probeTimes>,
  down: (a: string) => Promise<void>,
  up: (a: string) => Promise<void>,
): void {
  const reply = (msg: object) => process.stdout.write(`${JSON.stringify(msg)}\n`);
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    const { id, op, addrs, since } = JSON.parse(line) as {
      id: number;
      op: 'down' | 'up' | 'gaps';
      addrs: string[];
      since: number;
    };
    if (op === 'gaps') return reply({ id, ok: true, gaps: times.gaps(since) });
    Promise.all(addrs.map(op === 'down' ? down : up)).then(
      () => reply({ id, ok: true }),
      (err: unknown) => reply({ id, ok: false, error: String(err) }),
    );
  });
  const shutdown = () => process.exit(0);
  rl.on('close', shutdown);
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

if (import.meta.main) await childMain(process.argv[2] ?? '{}');

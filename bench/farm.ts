// The benchmark's target farm, run as a child process so that its CPU is nobody's: N HTTP
// targets (node:http, `Connection: close`, a 3-byte body) and N TCP listeners, spread over
// loopback addresses, with a mix of healthy, refusing (a closed port), slow (answers after
// `slowMs`) and failing (HTTP 503; for TCP the same as refusing) targets. Prints its target list
// as one line of JSON ({"targets": [...]}) once every listener is up, and stops on SIGTERM,
// SIGINT, when its standard input closes, or after `maxSeconds` whatever happens.
//   usage: node bench/farm.ts '{"http":200,"tcp":200,"mix":{"healthy":0.8,"refusing":0.1,"slow":0.1},"slowMs":100}'
import http from 'node:http';
import net from 'node:net';
import type { Behavior, ProbeKind, Target } from './engine/types.ts';

export interface FarmOptions {
  /** Number of HTTP targets and of TCP targets. */
  http: number;
  tcp: number;
  /** Share of each behaviour; normalised, so weights work as well as fractions. */
  mix: Partial<Record<Behavior, number>>;
  slowMs: number;
  /** Hard stop, in case every other way to stop it fails. */
  maxSeconds: number;
}

export const defaultFarmOptions: FarmOptions = {
  http: 200,
  tcp: 200,
  mix: { healthy: 0.8, refusing: 0.1, slow: 0.1 },
  slowMs: 100,
  maxSeconds: 3600,
};

const BEHAVIORS: Behavior[] = ['healthy', 'refusing', 'slow', 'failing'];

/**
 * Assigns a behaviour to each of `count` targets so that every prefix of the list follows the
 * mix as closely as it can: probing the list round-robin then meets the mix at any count.
 */
export function spreadMix(count: number, mix: Partial<Record<Behavior, number>>): Behavior[] {
  const total = BEHAVIORS.reduce((s, b) => s + Math.max(0, mix[b] ?? 0), 0);
  if (!(total > 0)) throw new Error('the mix needs at least one positive share');
  const given = new Map<Behavior, number>(BEHAVIORS.map((b) => [b, 0]));
  const out: Behavior[] = [];
  for (let i = 1; i <= count; i++) {
    let best: Behavior = 'healthy';
    let deficit = Number.NEGATIVE_INFINITY;
    for (const b of BEHAVIORS) {
      const share = Math.max(0, mix[b] ?? 0) / total;
      if (share === 0) continue;
      const d = share * i - given.get(b)!;
      if (d > deficit) [best, deficit] = [b, d];
    }
    given.set(best, given.get(best)! + 1);
    out.push(best);
  }
  return out;
}

/** Target i of a kind: HTTP on 127.0.{0,2,4,…}.x, TCP on 127.0.{1,3,5,…}.x, 250 hosts per block. */
export function hostFor(kind: ProbeKind, i: number): string {
  const block = 2 * Math.floor(i / 250) + (kind === 'tcp' ? 1 : 0);
  if (block > 255) throw new Error('too many targets for the loopback blocks the farm uses');
  return `127.0.${block}.${2 + (i % 250)}`;
}

function listen(server: net.Server, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: 0, backlog: 4096 }, () => {
      server.off('error', reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

/** A port that nothing listens on: bound, then closed. Connecting to it is refused. */
async function closedPort(host: string): Promise<number> {
  const s = net.createServer();
  const port = await listen(s, host);
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const BODY = Buffer.from('ok\n');

function httpServer(behavior: Behavior, slowMs: number): http.Server {
  const server = http.createServer((req, res) => {
    req.resume();
    const reply = () => {
      res.writeHead(behavior === 'failing' ? 503 : 200, {
        'content-type': 'text/plain',
        'content-length': BODY.length,
        connection: 'close',
      });
      res.end(BODY);
    };
    if (behavior === 'slow') {
      const timer = setTimeout(reply, slowMs);
      res.once('close', () => clearTimeout(timer));
    } else reply();
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  return server;
}

function tcpServer(behavior: Behavior, slowMs: number): net.Server {
  return net.createServer((socket) => {
    socket.on('error', () => {});
    if (behavior === 'slow') setTimeout(() => socket.destroy(), slowMs).unref();
    else socket.destroy();
  });
}

/** Starts every listener and returns the target list and a function that closes them all. */
export async function startFarm(opts: FarmOptions): Promise<{ targets: Target[]; close: () => void }> {
  const servers: net.Server[] = [];
  const targets: Target[] = [];
  for (const kind of ['http', 'tcp'] as const) {
    const behaviors = spreadMix(opts[kind], opts.mix);
    for (const [i, b] of behaviors.entries()) {
      const host = hostFor(kind, i);
      const behavior: Behavior = kind === 'tcp' && b === 'failing' ? 'refusing' : b;
      let port: number;
      if (behavior === 'refusing') port = await closedPort(host);
      else {
        const server = kind === 'http' ? httpServer(behavior, opts.slowMs) : tcpServer(behavior, opts.slowMs);
        port = await listen(server, host);
        servers.push(server);
      }
      const expect = behavior === 'healthy' || behavior === 'slow';
      targets.push(
        kind === 'http'
          ? { kind, host, port, path: '/healthz', expect, behavior }
          : { kind, host, port, expect, behavior },
      );
    }
  }
  return {
    targets,
    close: () => {
      for (const s of servers) {
        s.close();
        if (s instanceof http.Server) s.closeAllConnections();
      }
    },
  };
}

if (import.meta.main) {
  const opts: FarmOptions = { ...defaultFarmOptions, ...(process.argv[2] ? JSON.parse(process.argv[2]) : {}) };
  const farm = await startFarm(opts);
  const stop = () => {
    farm.close();
    process.exit(0);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.stdin.once('end', stop).once('close', stop).resume();
  setTimeout(stop, opts.maxSeconds * 1000).unref();
  process.stdout.write(`${JSON.stringify({ targets: farm.targets })}\n`);
}

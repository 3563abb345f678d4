// Fuzzing the exec prober's status channel: a loopback stand-in for the API server's pods/exec
// endpoint plays an arbitrary session (random channel bytes, output, invalid, odd or oversized
// JSON on the status channel, frames after the status, text frames, a close without status or no
// end at all), and the prober must:
// - resolve with a ProbeResult (src/safety/containment.ts's isProbeResult), never reject;
// - let no error escape: no 'uncaughtException' or 'unhandledRejection' while the session lasts;
// - say nothing the session controls: no container output, no status message, in its message,
//   which is one of exec.ts's own phrases;
// - settle by its own timer: within timeoutMs plus a generous grace for a loaded machine.
// Used by test/unit/probes/exec.fuzz.test.ts (bounded runs) and bench/fuzz.ts (long runs).
import { createServer, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import fc from 'fast-check';
import { type WebSocket, WebSocketServer } from 'ws';
import { createExecProber, MAX_FRAME_BYTES, MAX_STATUS_BYTES } from '../../src/probes/exec.ts';
import { isProbeResult } from '../../src/safety/containment.ts';

/** Text only the session controls: it must never show in a result message. */
export const MARKER = 'Zq9-tenant';

export interface FuzzFrame {
  binary: boolean;
  bytes: Uint8Array;
}

export interface FuzzSession {
  frames: FuzzFrame[];
  /** How the session ends after its frames: a close, a dropped connection, or nothing (the prober's timer). */
  end: 'close' | 'terminate' | 'hang';
  /** Instead of a session, the upgrade refused with this status code and body (then the connection closed). */
  refusal?: { code: number; body: Uint8Array };
}

const frame = (channel: number, payload: string | Uint8Array): Uint8Array =>
  Buffer.concat([Buffer.from([channel]), typeof payload === 'string' ? Buffer.from(payload) : payload]);

const tenantText = fc.string({ maxLength: 40 }).map((s) => `${s}${MARKER}${s}`);

/** metav1.Status-like objects with any JSON type in any field. */
const status = fc.record(
  {
    status: fc.oneof(fc.constantFrom('Success', 'Failure'), fc.jsonValue()),
    reason: fc.oneof(fc.constantFrom('NonZeroExitCode', 'InternalError', 'Not A Word'), fc.jsonValue()),
    message: fc.oneof(tenantText, fc.jsonValue()),
    code: fc.jsonValue(),
    metadata: fc.jsonValue(),
    details: fc.oneof(
      fc.jsonValue(),
      fc.record(
        {
          causes: fc.oneof(
            fc.jsonValue(),
            fc.array(
              fc.record(
                {
                  reason: fc.oneof(fc.constant('ExitCode'), fc.jsonValue()),
                  message: fc.oneof(fc.nat(300).map(String), fc.integer(), tenantText, fc.jsonValue()),
                },
                { requiredKeys: [] },
              ),
              { maxLength: 4 },
            ),
          ),
        },
        { requiredKeys: [] },
      ),
    ),
  },
  { requiredKeys: [] },
);

const oversized = fc.constantFrom(MAX_STATUS_BYTES + 1, 64 * 1024, MAX_FRAME_BYTES + 1);

const frameBytes: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 3, arbitrary: status.map((s) => frame(3, JSON.stringify(s))) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(1, 2), tenantText).map(([c, t]) => frame(c, t)) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 60 }).map((t) => frame(3, t)) },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 48 }) },
  { weight: 1, arbitrary: fc.tuple(fc.nat(255), tenantText).map(([c, t]) => frame(c, t)) },
  { weight: 1, arbitrary: fc.jsonValue().map((v) => frame(3, JSON.stringify(v) ?? '')) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom(1, 3), oversized)
      .map(([c, n]) => frame(c, `{"status":"Success","message":"${MARKER}${'x'.repeat(n)}"}`)),
  },
);

/** Refusals of the upgrade: 400/404 (the codes whose body exec.ts reads) with Status-like or arbitrary bodies. */
const refusal = fc.record({
  code: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(400, 404) }, fc.integer({ min: 300, max: 599 })),
  body: fc.oneof(
    status.map((s) => Buffer.from(JSON.stringify(s))),
    fc
      .record({ kind: fc.constantFrom('pods', 'nodes'), name: fc.constantFrom('web-0', MARKER) })
      .map((d) => Buffer.from(JSON.stringify({ reason: 'NotFound', message: MARKER, details: d }))),
    fc.uint8Array({ maxLength: 64 }),
    oversized.map((n) => Buffer.from(`{"reason":"BadRequest","message":"${'x'.repeat(n)}"}`)),
  ),
});

/** Arbitrary exec sessions; a session that never ends is rare (each costs the probe's timeout). */
export const sessionArbitrary: fc.Arbitrary<FuzzSession> = fc.record(
  {
    frames: fc.array(
      fc.record({
        binary: fc.oneof({ weight: 5, arbitrary: fc.constant(true) }, fc.constant(false)),
        bytes: frameBytes,
      }),
      { maxLength: 6 },
    ),
    end: fc.oneof(
      { weight: 6, arbitrary: fc.constant('close' as const) },
      { weight: 3, arbitrary: fc.constant('terminate' as const) },
      { weight: 1, arbitrary: fc.constant('hang' as const) },
    ),
    refusal: fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, refusal),
  },
  { requiredKeys: ['frames', 'end'] },
);

export interface FuzzServer {
  port: number;
  /** The session the next connection plays. */
  next(session: FuzzSession): void;
  /** Resolves once every session has closed on the server's side. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

/** The stand-in API server, on 127.0.0.1. */
export async function startFuzzServer(): Promise<FuzzServer> {
  let session: FuzzSession = { frames: [], end: 'close' };
  const open = new Set<WebSocket>();
  const waiters: Array<() => void> = [];
  const sockets = new Set<Socket>();
  const http = createServer((_req, res) => res.writeHead(404).end());
  http.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (offered) => (offered.has('v5.channel.k8s.io') ? 'v5.channel.k8s.io' : false),
  });
  http.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', () => {}); // the prober may drop the connection at any point
    if (session.refusal) {
      const { code, body } = session.refusal;
      socket.end(
        Buffer.concat([Buffer.from(`HTTP/1.1 ${code} Refused\r\nContent-Length: ${body.length}\r\n\r\n`), body]),
      );
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      open.add(ws);
      ws.on('error', () => {});
      ws.once('close', () => {
        open.delete(ws);
        if (open.size === 0) for (const w of waiters.splice(0)) w();
      });
      const { frames, end } = session;
      for (const f of frames) ws.send(f.bytes, { binary: f.binary });
      if (end === 'close') ws.close(1000);
      else if (end === 'terminate') ws.terminate();
    });
  });
  const port = await new Promise<number>((resolve) =>
    http.listen(0, '127.0.0.1', () => resolve((http.address() as { port: number }).port)),
  );
  return {
    port,
    next: (s) => {
      session = s;
    },
    idle: () => new Promise<void>((resolve) => (open.size === 0 ? resolve() : waiters.push(resolve))),
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        for (const s of sockets) s.destroy();
        wss.close();
        http.close(() => resolve());
      }),
  };
}

const SUBJECT = 'exec ["probe"] in shop/web-0/app';
/** Every message exec.ts can give: its own phrases, a number, or a CamelCase reason. */
const VOCABULARY = new RegExp(
  `^${escapeRegExp(SUBJECT)}: (exit code (\\d{1,3}|unknown)|timeout after \\d+ms|` +
    'exec refused with HTTP \\d{3}: (no such pod|no such container in the pod)|' +
    'not run: (exec failed without an exit code( \\([A-Za-z]{1,64}\\))?|unreadable exit status|exec stream closed without exit status|' +
    'no exec session within \\d+ms|API server unreachable: [a-z ()-]+|API server answered HTTP \\d+))$',
);

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Grace past the probe's timeout before "did not settle" (a loaded machine; never a wall-clock figure). */
const GRACE_MS = 10_000;

/** The property over one server: each run plays one session and checks one probe. */
export function execStatusProperty(server: FuzzServer, timeoutMs: number) {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'fuzz', server: `http://127.0.0.1:${server.port}`, skipTLSVerify: true }],
    users: [{ name: 'operator', token: 'token' }],
    contexts: [{ name: 'fuzz', cluster: 'fuzz', user: 'operator' }],
    currentContext: 'fuzz',
  });
  const prober = createExecProber(kc);
  return fc.asyncProperty(sessionArbitrary, async (session) => {
    const escaped: unknown[] = [];
    const record = (err: unknown) => escaped.push(err);
    process.on('uncaughtException', record);
    process.on('unhandledRejection', record);
    let guard: NodeJS.Timeout | undefined;
    try {
      server.next(session);
      const probe = prober.probe({ namespace: 'shop', pod: 'web-0', container: 'app', command: ['probe'], timeoutMs });
      const late = new Promise<'late'>((resolve) => {
        guard = setTimeout(() => resolve('late'), timeoutMs + GRACE_MS);
      });
      const result: unknown = await Promise.race([probe, late]);
      if (result === 'late') throw new Error(`the probe did not settle within ${timeoutMs} ms + ${GRACE_MS} ms`);
      // Frames after the status can only do harm while the prober's socket lives.
      await Promise.race([server.idle(), late]);
      if (escaped.length > 0) throw new Error(`an error escaped the prober: ${String(escaped[0])}`);
      if (!isProbeResult(result)) throw new Error(`not a ProbeResult: ${JSON.stringify(result)}`);
      if (result.message.includes(MARKER)) throw new Error(`tenant text in the message: ${result.message}`);
      if (!VOCABULARY.test(result.message)) throw new Error(`a message exec.ts does not say: ${result.message}`);
      if ((result.outcome === 'unknown') !== result.couldNotLook)
        throw new Error(`couldNotLook ${result.couldNotLook} with outcome ${result.outcome}`);
    } finally {
      clearTimeout(guard);
      process.off('uncaughtException', record);
      process.off('unhandledRejection', record);
    }
  });
}

export interface FuzzRunOptions {
  numRuns: number;
  seed?: number;
  /** The probe's timeoutMs: what a session that never ends costs. */
  timeoutMs?: number;
}

/** Runs the property `numRuns` times against a fresh server; throws fast-check's report on a counterexample. */
export async function checkExecStatusChannel(opts: FuzzRunOptions): Promise<void> {
  const server = await startFuzzServer();
  try {
    await fc.assert(execStatusProperty(server, opts.timeoutMs ?? 200), {
      numRuns: opts.numRuns,
      ...(opts.seed === undefined ? {} : { seed: opts.seed }),
    });
  } finally {
    await server.close();
  }
}

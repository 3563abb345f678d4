// probeGrpc against hostile servers over real sockets on 127.0.0.1 (test/unit/probes/support/
// hostile-grpc.ts): fuzzed answers, errors with any code and text, garbage grpc-status, GOAWAY
// before the answer, lying frames, compression bombs, resets, silence. Whatever the server does,
// the probe resolves; it succeeds only on a SERVING answer; a reachable server never makes it
// "could not look"; the server's text never reaches the message; silence ends in our timeout.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeGrpc } from '../../../src/probes/grpc.ts';
import { decodeHealthCheckResponse } from '../../../src/probes/health-proto.ts';
import { responseInputArb } from '../../fuzz/health-proto.ts';
import { turnsUntil } from '../../support/wait.ts';
import {
  type Behaviour,
  behaviourArb,
  HANGS,
  type HostileServers,
  MARKER,
  startHostileServers,
  watchClientSockets,
} from './support/hostile-grpc.ts';

// Servers that never end the call wait out a short timeout; the others get a long one, so that a
// loaded machine never turns their answer into a timeout. grpc-js waits for the end of a call
// with two answers ('two-messages') as if it had none.
const SHORT_MS = 200;
const LONG_MS = 3000;
const timeoutFor = (b: Behaviour) => (HANGS.has(b.kind) || b.kind === 'two-messages' ? SHORT_MS : LONG_MS);
const MAX_MESSAGE = 64 * 1024;

/** Whether the server sent a SERVING message within the size limit, however it framed the rest. */
function sentServing(b: Behaviour): boolean {
  if (b.kind === 'frame' || b.kind === 'two-messages') return b.kind === 'two-messages' || b.servingInside === true;
  const bytes = b.kind === 'answer' || b.kind === 'garbage-status' ? b.bytes : undefined;
  if (!bytes || bytes.length > MAX_MESSAGE) return false;
  try {
    return decodeHealthCheckResponse(Buffer.from(bytes)).status === 1;
  } catch {
    return false;
  }
}

// What follows the subject in a message: names and fixed words only, never a server's text.
const VERDICT = new RegExp(
  `^: (?:[A-Z_]+|status -?\\d+|code \\S+|server does not implement grpc\\.health\\.v1\\.Health|SERVICE_UNKNOWN \\(NOT_FOUND\\)|timeout after (?:${SHORT_MS}ms|${LONG_MS / 1000}s))$`,
);

describe('probeGrpc against hostile servers', () => {
  let servers: HostileServers;
  beforeAll(async () => {
    servers = await startHostileServers();
  });
  afterAll(() => servers.close());

  async function probe(b: Behaviour) {
    const { port, service } = servers.stage(b);
    const result = await probeGrpc({ host: '127.0.0.1', port, service, timeoutMs: timeoutFor(b) });
    return { result, subject: `gRPC health check 127.0.0.1:${port} (service "${service}")` };
  }

  it('resolves, succeeds only on SERVING, never blames the network, never repeats the server', async () => {
    const behaviours = behaviourArb(responseInputArb.map((i) => i.bytes));
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const timersBefore = timers();
    const opened = watchClientSockets(...servers.ports);
    try {
      await fc.assert(
        fc.asyncProperty(behaviours, async (b) => {
          const { result, subject } = await probe(b);
          // Success needs a SERVING message; a well-formed answer of SERVING must succeed.
          if (result.outcome === 'success') expect(sentServing(b), 'success without SERVING').toBe(true);
          if (b.kind === 'answer') expect(result.outcome === 'success', 'success on SERVING').toBe(sentServing(b));
          expect(result.couldNotLook, 'a server that answered TCP and HTTP/2 was looked at').toBe(false);
          expect(result.message.startsWith(subject)).toBe(true);
          expect(result.message.slice(subject.length)).toMatch(VERDICT);
          expect(result.message).not.toContain(MARKER);
          if (HANGS.has(b.kind))
            expect(result).toMatchObject({ outcome: 'timeout', message: `${subject}: timeout after ${SHORT_MS}ms` });
          expect(result.durationMs).toBeGreaterThanOrEqual(0);
          // Whatever the server did, the probe's sockets are gone once it has resolved.
          expect(opened.sockets.filter((s) => !s.destroyed)).toEqual([]);
        }),
        { numRuns: 60 },
      );
    } finally {
      opened.stop();
    }
    expect(opened.sockets.length).toBeGreaterThan(0);
    // No timer of a probe outlives it (grpc-js's own are unref'd and not counted).
    expect(await turnsUntil(() => timers() <= timersBefore)).toBe(true);
  });
});

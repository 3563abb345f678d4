// The unsharded leader starts only once no shard bucket Lease is live (src/controllers/leader.ts,
// docs/sharding.md decision 6): turning sharding off in a rolling update must not make two writers.
import { ApiException } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { waitForNoLiveShards } from '../../../src/controllers/leader.ts';
import type { Lease } from '../../../src/kube/lease.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { FakeClock } from '../../../src/runtime/clock.ts';
import { captureLog } from '../../support/log-capture.ts';

const bucket = (holder: string, renewTime = '2026-11-30T12:00:00.000000Z'): Lease => ({
  metadata: {
    name: 'readygate-s16-bucket-3',
    namespace: 'ops',
    labels: { 'readygate.dev/shard-bucket': 'readygate-s16' },
  },
  spec: { holderIdentity: holder, leaseDurationSeconds: 6, renewTime },
});

function setUp(answers: (() => Lease[])[]) {
  const clock = new FakeClock();
  const { lines, destination } = captureLog();
  const selectors: string[] = [];
  let i = 0;
  const client = {
    list: async (selector: string) => {
      selectors.push(selector);
      return answers[Math.min(i++, answers.length - 1)]!();
    },
  };
  const w = { client, clock, leaseDurationMs: 6_000, retryPeriodMs: 1_000, log: createLogger({ destination }) };
  let done = false;
  const waiting = waitForNoLiveShards(w, new AbortController().signal).then(() => {
    done = true;
  });
  return { clock, lines, selectors, waiting, isDone: () => done };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('waitForNoLiveShards', () => {
  it('starts at once when no bucket Lease exists, listing by the label', async () => {
    const s = setUp([() => []]);
    await s.waiting;
    expect(s.selectors).toEqual(['readygate.dev/shard-bucket']);
  });

  it('waits while a sharded replica renews its bucket, and starts once it is handed back', async () => {
    let renew = 0;
    const s = setUp([
      () => [bucket('rg-0', `2026-11-30T12:00:0${renew++}.000000Z`)],
      () => [bucket('rg-0', `2026-11-30T12:00:0${renew++}.000000Z`)],
      () => [bucket('')],
    ]);
    await settle();
    expect(s.isDone()).toBe(false);
    expect(s.lines.some((l) => l.msg === 'waiting for sharded replicas to release their bucket Leases')).toBe(true);
    await s.clock.tick(1_000);
    await settle();
    expect(s.isDone()).toBe(false);
    await s.clock.tick(1_000);
    await s.waiting;
  });

  it('waits out a held Lease nobody renews: a lease duration after it was first seen', async () => {
    const s = setUp([() => [bucket('dead-replica')]]);
    for (let t = 0; t < 5; t++) {
      await s.clock.tick(1_000);
      await settle();
    }
    expect(s.isDone()).toBe(false);
    await s.clock.tick(1_000);
    await s.waiting;
    expect(s.clock.now()).toBeGreaterThanOrEqual(6_000);
  });

  it('goes on, with a warning, when RBAC forbids listing Leases', async () => {
    const s = setUp([
      () => {
        throw new ApiException(403, 'forbidden', '{}', {});
      },
    ]);
    await s.waiting;
    expect(s.lines.some((l) => String(l.msg).includes('cannot list Leases'))).toBe(true);
  });
});

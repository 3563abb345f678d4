// The HTTP response path under property-based fuzzing (test/fuzz/http-response.ts): bounded runs
// here; `node bench/fuzz.ts` runs the same properties a million times.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, it } from 'vitest';
import {
  agreesWithLlhttpProperty,
  parserProperty,
  socketProperty,
  startScenarioTarget,
} from '../../fuzz/http-response.ts';

describe('HTTP response parser under fuzzing', () => {
  it('settles within its byte bound, throws only Errors, and answers the same however the bytes are split', () => {
    fc.assert(parserProperty(), { numRuns: 3000 });
  });

  it('agrees with llhttp wherever both accept', async () => {
    await fc.assert(agreesWithLlhttpProperty(), { numRuns: 3000 });
  });

  describe('over a real socket on 127.0.0.1', () => {
    let target: Awaited<ReturnType<typeof startScenarioTarget>>;
    beforeAll(async () => {
      target = await startScenarioTarget();
    });
    afterAll(() => target.close());

    it('settles, stays under the byte bound, matches the in-memory parse, and the prober never throws', async () => {
      await fc.assert(socketProperty(target), { numRuns: 150 });
    });
  });
});

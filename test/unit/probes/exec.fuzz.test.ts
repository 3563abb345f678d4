// Property-based test of the exec prober's status channel (test/fuzz/exec-status.ts), a bounded number
// of runs; bench/fuzz.ts runs the same property for as long as one likes.
import { describe, it } from 'vitest';
import { checkExecStatusChannel } from '../../fuzz/exec-status.ts';

describe('exec status channel fuzz', () => {
  it('any session → a ProbeResult in exec.ts own words, settled by its timer, nothing escaped', async () => {
    await checkExecStatusChannel({ numRuns: 150, timeoutMs: 200 });
  }, 60_000);
});

// Long runs of the exec status channel fuzz (test/unit/probes/support/exec-fuzz.ts):
//   node scripts/fuzz-exec.ts [runs] [seed]
// runs the property `runs` times (default 10,000) against a loopback stand-in for the API server;
// exit 0 when every run held, 1 with fast-check's counterexample and seed otherwise. Bounded: each
// run ends by the probe's own 200 ms timeout at the latest.
import { checkExecStatusChannel } from '../test/unit/probes/support/exec-fuzz.ts';

const [runsArg, seedArg] = process.argv.slice(2);
const numRuns = runsArg === undefined ? 10_000 : Number(runsArg);
const seed = seedArg === undefined ? undefined : Number(seedArg);
if (!Number.isInteger(numRuns) || numRuns < 1) {
  console.error(`runs must be a positive integer, got ${JSON.stringify(runsArg)}`);
  process.exit(2);
}
if (seed !== undefined && !Number.isInteger(seed)) {
  console.error(`seed must be an integer, got ${JSON.stringify(seedArg)}`);
  process.exit(2);
}
const started = performance.now();
try {
  await checkExecStatusChannel({ numRuns, ...(seed === undefined ? {} : { seed }) });
  console.log(`${numRuns} runs held in ${Math.round(performance.now() - started)} ms`);
} catch (err) {
  console.error(err instanceof Error ? err.message : String(err));
  process.exitCode = 1;
}

// node bench/fuzz.ts [--runs N] [--seed S] [--only name,name]
// The long run of the probe parsers' properties (test/fuzz/): the same properties CI runs a few
// thousand times, here a million times each by default (the socket property, which opens two
// loopback connections per case, and the exec one, a session each, a hundredth of that). Prints cases, seconds and cases/s per
// property and writes bench/results/<date>-fuzz.json; exits 1 with the counterexample, its seed
// and path (to replay: --seed S --path P --only name) on the first failure.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import { execStatusProperty, startFuzzServer } from '../test/fuzz/exec-status.ts';
import { grpcHealthDecoderProperty, grpcHealthRequestDecoderProperty } from '../test/fuzz/health-proto.ts';
import {
  agreesWithLlhttpProperty,
  parserProperty,
  socketProperty,
  startScenarioTarget,
} from '../test/fuzz/http-response.ts';
import { describeCommit } from './git.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.dirname(here);

interface Target {
  name: string;
  /** Share of --runs this property runs (socket cases cost a connection each). */
  share: number;
  run(params: Params): Promise<Outcome>;
}

type Params = { numRuns: number; seed: number; path?: string };
type Outcome = { numRuns: number; failed: boolean; report: string };

async function check<T>(property: fc.IRawProperty<T>, params: Params): Promise<Outcome> {
  const details = await fc.check(property, params);
  return { numRuns: details.numRuns, failed: details.failed, report: fc.defaultReportMessage(details) ?? '' };
}

async function targets(): Promise<{ list: Target[]; close(): Promise<void> }> {
  const socketTarget = await startScenarioTarget();
  const execServer = await startFuzzServer();
  const list: Target[] = [
    { name: 'http-parser', share: 1, run: (p) => check(parserProperty(), p) },
    { name: 'http-vs-llhttp', share: 1, run: (p) => check(agreesWithLlhttpProperty(), p) },
    { name: 'http-socket', share: 0.01, run: (p) => check(socketProperty(socketTarget), p) },
    { name: 'grpc-health-response', share: 1, run: (p) => check(grpcHealthDecoderProperty(), p) },
    { name: 'grpc-health-request', share: 1, run: (p) => check(grpcHealthRequestDecoderProperty(), p) },
    // A session that never ends costs the probe's 200 ms timeout.
    { name: 'exec-status', share: 0.01, run: (p) => check(execStatusProperty(execServer, 200), p) },
  ];
  return { list, close: async () => void (await Promise.all([socketTarget.close(), execServer.close()])) };
}

interface Row {
  name: string;
  runs: number;
  seconds: number;
  perSecond: number;
  seed: number;
  failed: boolean;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '1000000' },
      seed: { type: 'string' },
      path: { type: 'string' },
      only: { type: 'string' },
    },
  });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer, got ${values.runs}`);
  const only = values.only ? new Set(values.only.split(',')) : undefined;
  const seed = values.seed === undefined ? Date.now() ^ (Math.random() * 2 ** 31) : Number(values.seed);
  const commit = describeCommit(root, ['src/probes', 'test/fuzz']); // what runs, read before it runs
  const { list, close } = await targets();
  const rows: Row[] = [];
  try {
    for (const t of list) {
      if (only && !only.has(t.name)) continue;
      const n = Math.max(1, Math.round(runs * t.share));
      const started = performance.now();
      const details = await t.run({ numRuns: n, seed, ...(values.path ? { path: values.path } : {}) });
      const seconds = (performance.now() - started) / 1000;
      rows.push({
        name: t.name,
        runs: details.numRuns,
        seconds,
        perSecond: details.numRuns / seconds,
        seed,
        failed: details.failed,
      });
      console.log(
        `${t.name}: ${details.numRuns} cases in ${seconds.toFixed(1)} s (${Math.round(details.numRuns / seconds)}/s)`,
      );
      if (details.failed) {
        console.error(details.report);
        process.exitCode = 1;
        break;
      }
    }
  } finally {
    await close();
  }
  const out = path.join(here, 'results', `${new Date().toISOString().slice(0, 10)}-fuzz.json`);
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, `${JSON.stringify({ commit, node: process.version, runs, rows }, null, 2)}\n`);
  console.log(`wrote ${path.relative(process.cwd(), out)}`);
}

await main();

// Runs readygate's prober in a process of its own, so that its CPU and memory can be measured
// as the Go peers measure theirs: reads a Job as JSON on standard input, prints a PeerReport as
// one line of JSON on standard output.
//   usage: node bench/engine/readygate-runner.ts < job.json
import { text } from 'node:stream/consumers';
import { runJob } from './loop.ts';
import { createProber, implementation } from './readygate-prober.ts';
import type { Job } from './types.ts';

const job = JSON.parse(await text(process.stdin)) as Job;
job.targets = job.targets.filter((t) => t.kind === job.kind);
if (job.targets.length === 0) throw new Error(`no ${job.kind} targets in the job`);
const report = await runJob('readygate', job, createProber(job.kind, job.timeoutMs, job.targets[0]!.path));
report.extra = { implementation };
process.stdout.write(`${JSON.stringify(report)}\n`);

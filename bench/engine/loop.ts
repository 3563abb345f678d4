// The probe loop of readygate's runner: the same schedule as the Go peers' loop
// (tools/bench/internal/loop/loop.go). Probe i is planned at start + i / rate and starts at its
// planned time if fewer than `concurrency` probes are in flight, otherwise as soon as one ends;
// the lateness is recorded and nothing is skipped.
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { Job, PeerReport, Target } from './types.ts';

/** Runs one probe of job.targets[i] and resolves to whether it succeeded; never rejects. */
export type ProbeFn = (i: number, target: Target) => Promise<boolean>;

interface Phase {
  successes: number;
  failures: number;
  lateness: Float64Array;
  wallMs: number;
}

/** Runs `count` probes on the job's schedule and resolves when the last one has ended. */
export function runPhase(job: Job, count: number, probe: ProbeFn): Promise<Phase> {
  const phase: Phase = { successes: 0, failures: 0, lateness: new Float64Array(count), wallMs: 0 };
  const interval = 1000 / job.rate;
  const n = job.targets.length;
  return new Promise((resolve) => {
    const start = performance.now();
    let next = 0;
    let inFlight = 0;
    let timer: NodeJS.Timeout | undefined;
    const done = (ok: boolean) => {
      if (ok) phase.successes++;
      else phase.failures++;
      inFlight--;
      pump();
    };
    const pump = () => {
      const now = performance.now();
      while (next < count && inFlight < job.concurrency) {
        const planned = start + next * interval;
        if (planned > now) break;
        phase.lateness[next] = now - planned;
        const t = next % n;
        next++;
        inFlight++;
        probe(t, job.targets[t]!).then(done, () => done(false));
      }
      if (next >= count) {
        if (inFlight === 0) {
          phase.wallMs = performance.now() - start;
          resolve(phase);
        }
        return;
      }
      // Saturated: the next completion pumps again. Otherwise wake at the next planned start.
      if (inFlight < job.concurrency && timer === undefined) {
        timer = setTimeout(
          () => {
            timer = undefined;
            pump();
          },
          Math.max(0, start + next * interval - now),
        );
      }
    };
    pump();
  });
}

/**
 * VmHWM of this process, in KiB, as the Go peers read theirs. Not resourceUsage().maxRSS: Linux
 * carries ru_maxrss over from the parent across fork and execve.
 */
export function peakRssKiB(): number {
  const m = /^VmHWM:\s*(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
  if (!m) throw new Error('no VmHWM in /proc/self/status');
  return Number(m[1]);
}

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Runs the warm-up, then the measured phase between two readings of process.cpuUsage(). */
export async function runJob(peer: string, job: Job, probe: ProbeFn): Promise<PeerReport> {
  if (job.warmup > 0) await runPhase(job, job.warmup, probe);
  const before = process.cpuUsage();
  const phase = await runPhase(job, job.probes, probe);
  const cpu = process.cpuUsage(before);
  const whole = process.cpuUsage();
  let expected = 0;
  for (let i = 0; i < job.probes; i++) if (job.targets[i % job.targets.length]!.expect) expected++;
  phase.lateness.sort();
  return {
    peer,
    kind: job.kind,
    probes: job.probes,
    successes: phase.successes,
    failures: phase.failures,
    expectedSuccesses: expected,
    cpuUserMs: cpu.user / 1000,
    cpuSysMs: cpu.system / 1000,
    maxRssKiB: peakRssKiB(),
    wallMs: phase.wallMs,
    latenessP50Ms: percentile(phase.lateness, 0.5),
    latenessP99Ms: percentile(phase.lateness, 0.99),
    latenessMaxMs: percentile(phase.lateness, 1),
    procCpuUserMs: whole.user / 1000,
    procCpuSysMs: whole.system / 1000,
  };
}

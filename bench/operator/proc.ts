// What a process costs, from /proc: resident memory now and at its peak, and CPU time so far.
import { readFileSync } from 'node:fs';

export interface ProcSample {
  rssKiB: number;
  /** Peak resident set (VmHWM), start-up included. */
  hwmKiB: number;
  /** user + system CPU time so far, ms. */
  cpuMs: number;
}

const TICK_MS = 10; // USER_HZ is 100 on Linux

/** Reads /proc/<pid>/status and /proc/<pid>/stat; undefined if the process is gone. */
export function procSample(pid: number): ProcSample | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command (which may hold spaces) start at the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return { rssKiB: kib('VmRSS'), hwmKiB: kib('VmHWM'), cpuMs: (utime + stime) * TICK_MS };
  } catch {
    return undefined;
  }
}

/** Sums the samples of a Prometheus counter over all label sets (optionally filtered); 0 if none. */
export function sumMetric(text: string, name: string, filter?: (labels: string) => boolean): number {
  return metricValue(text, name, filter) ?? 0;
}

/**
 * The sum of a metric's samples over all label sets (optionally filtered), or null when the text
 * has no sample of it: a metric the operator does not export is "not reported", not zero.
 */
export function metricValue(text: string, name: string, filter?: (labels: string) => boolean): number | null {
  let sum: number | null = null;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([-+0-9.eE]+|NaN)/.exec(line);
    if (!m || m[1] !== name) continue;
    if (filter && !filter(m[2] ?? '')) continue;
    sum = (sum ?? 0) + Number(m[3]);
  }
  return sum;
}

/** Percentile by nearest rank (p in 0..100) of the values; NaN if none. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

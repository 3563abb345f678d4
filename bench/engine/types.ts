// Shapes shared by the target farm, readygate's runner, the Go peers (tools/bench/internal/loop)
// and the engine that compares them. The JSON field names are the Go peers' too: keep them in step.

export type ProbeKind = 'http' | 'tcp';

/** How a farm target answers: healthy and slow ones succeed, refusing and failing ones do not. */
export type Behavior = 'healthy' | 'refusing' | 'slow' | 'failing';

export interface Target {
  kind: ProbeKind;
  host: string;
  port: number;
  /** HTTP path (HTTP targets only). */
  path?: string;
  /** Whether a correct prober reports success. */
  expect: boolean;
  behavior: Behavior;
}

/** What to probe, how many times, how fast and with how many in flight. */
export interface Job {
  kind: ProbeKind;
  targets: Target[];
  probes: number;
  warmup: number;
  /** Aggregate rate, probes per second. */
  rate: number;
  /** Most probes in flight at once. */
  concurrency: number;
  timeoutMs: number;
}

/** What every peer prints after a run, for the measured phase (warm-up excluded). */
export interface PeerReport {
  peer: string;
  kind: ProbeKind;
  probes: number;
  successes: number;
  failures: number;
  expectedSuccesses: number;
  cpuUserMs: number;
  cpuSysMs: number;
  maxRssKiB: number;
  wallMs: number;
  latenessP50Ms: number;
  latenessP99Ms: number;
  latenessMaxMs: number;
  /** Whole-process CPU since start, start-up included. */
  procCpuUserMs: number;
  procCpuSysMs: number;
  extra?: Record<string, unknown>;
}

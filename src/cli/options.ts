// Flags and environment of `readygate run`, parsed into validated OperatorOptions.
// node:util parseArgs is enough here; a CLI framework would add a dependency for four commands.
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { DEFAULT_CONDITION_PREFIXES, invalidPrefix } from '../safety/ownership.ts';
import { MAX_BUCKETS } from '../safety/sharding.ts';

export interface OperatorOptions {
  kubeconfig?: string;
  /** Namespaces to watch; empty means cluster-wide. */
  namespaces: string[];
  /** Probes in flight at once, across all targets. */
  probeConcurrency: number;
  /** Reconcile workers of the ProbePolicy controller. */
  workers: number;
  /** Reconcile workers of the pod controller: each waits on one PATCH, so many stay cheap. */
  podWorkers: number;
  /** Largest factor steady probe periods are stretched by under overload (src/safety/overload.ts). */
  maxPeriodStretch: number;
  apiQps: number;
  apiBurst: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
  /** json: one JSON object a line (log collectors); text: `time LEVEL msg key=value` for people. */
  logFormat: 'json' | 'text';
  healthHost: string;
  healthPort: number;
  /** /metrics only for callers a TokenReview and SubjectAccessReview admit (src/observability/metrics-auth.ts). */
  metricsAuth: boolean;
  leaderElect: boolean;
  /** Buckets pods are sharded into across replicas (docs/sharding.md); 0: no sharding. */
  shardBuckets: number;
  leaderElectionNamespace: string;
  leaderElectionId: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  enableExec: boolean;
  allowSecretCa: boolean;
  /** Condition type prefixes readygate may write (src/safety/ownership.ts). */
  allowedConditionPrefixes: string[];
  resyncMs: number;
  shutdownGraceMs: number;
  /**
   * How long a readiness gate no ProbePolicy provides any more stays as it is before a condition
   * on it that is not True is set True (src/safety/gate-release.ts); 0: never, conditions are kept.
   */
  releaseOrphanedGatesAfterMs: number;
  /** V8's memory saver mode: a smaller heap for more GC work (see main.ts). */
  memorySaver: boolean;
}

export class UsageError extends Error {}

export const RUN_HELP = `Usage: readygate run [flags]

Runs the operator: watches ProbePolicies and pods, probes the selected pods and patches their
readiness-gate conditions.

Flags (environment variable in brackets):
  --kubeconfig PATH                 kubeconfig to use; default in-cluster, then $KUBECONFIG,
                                    then ~/.kube/config
  --namespaces a,b                  watch only these namespaces [READYGATE_NAMESPACES]; default all
  --probe-concurrency N             probes in flight at once (default 256)
  --workers N                       ProbePolicy reconcile workers (default 4)
  --pod-workers N                   pod reconcile workers, i.e. pod writes in flight (default 32)
  --max-period-stretch N            when probing outgrows the CPU, periods of settled pods
                                    stretch evenly up to N times (default 10; 1: never)
  --api-qps N, --api-burst N        rate limit for writes to the API server (default 200, 400)
  --log-level LEVEL                 fatal|error|warn|info|debug|trace [LOG_LEVEL] (default info)
  --log-format FORMAT               json|text [LOG_FORMAT] (default json)
  --health-addr HOST:PORT           /healthz, /readyz, /metrics (default 127.0.0.1:8081)
  --metrics-auth                    /metrics only with a bearer token allowed get on /metrics
                                    (TokenReview + SubjectAccessReview; off by default)
  --leader-elect                    elect a leader on a Lease; only the leader probes and writes
  --leader-election-namespace NS    [POD_NAMESPACE] (default readygate-system)
  --leader-election-id NAME         Lease name (default readygate)
  --shard-buckets N                 share the pods between every replica in N buckets, each
                                    held on a Lease (1-256; default 0: only the leader works);
                                    needs --leader-elect and POD_NAME
  --lease-duration D, --renew-deadline D, --retry-period D   (default 15s, 10s, 2s)
  --enable-exec                     allow exec probes (needs pods/exec RBAC; off by default)
  --allow-secret-ca                 allow tls.caSecretRef (needs secrets get RBAC; off by default)
  --allowed-condition-prefixes a/,b/  condition types readygate may write: policies naming any
                                    other type are refused (default readygate.dev/)
  --resync D                        full re-list of every watch as a safety net (default 10m)
  --shutdown-grace D                time to drain on SIGTERM (default 10s); the process exits
                                    at most 5s after it, with code 1 if the drain did not finish
  --release-orphaned-gates-after D  a gate no ProbePolicy provides any more (deleted, or its
                                    selector no longer matches) whose condition is not True is set
                                    True, reason GateReleased, after D (default 60s; 0: never,
                                    conditions are kept as they are)
  --no-memory-saver                 let V8 grow its heap freely: 2-3x the memory for less GC
                                    CPU (default: V8's memory saver mode)
`;

/** Parses "1500ms", "15s", "10m", "1h" or a bare number of seconds into milliseconds. */
export function parseDuration(flag: string, value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!m) throw new UsageError(`--${flag}: invalid duration ${JSON.stringify(value)} (examples: 500ms, 15s, 10m)`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  return Math.round(n * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit as 'ms' | 's' | 'm' | 'h']);
}

function positiveInt(flag: string, value: string, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new UsageError(`--${flag}: must be an integer from 1 to ${max}`);
  return n;
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;

/** The flags of `readygate run` (RUN_HELP documents them). */
export const RUN_FLAGS = {
  kubeconfig: { type: 'string' },
  namespaces: { type: 'string' },
  'probe-concurrency': { type: 'string' },
  workers: { type: 'string' },
  'pod-workers': { type: 'string' },
  'max-period-stretch': { type: 'string' },
  'api-qps': { type: 'string' },
  'api-burst': { type: 'string' },
  'log-level': { type: 'string' },
  'log-format': { type: 'string' },
  'health-addr': { type: 'string' },
  'metrics-auth': { type: 'boolean' },
  'leader-elect': { type: 'boolean' },
  'leader-election-namespace': { type: 'string' },
  'leader-election-id': { type: 'string' },
  'shard-buckets': { type: 'string' },
  'lease-duration': { type: 'string' },
  'renew-deadline': { type: 'string' },
  'retry-period': { type: 'string' },
  'enable-exec': { type: 'boolean' },
  'allow-secret-ca': { type: 'boolean' },
  'allowed-condition-prefixes': { type: 'string' },
  resync: { type: 'string' },
  'shutdown-grace': { type: 'string' },
  'release-orphaned-gates-after': { type: 'string' },
  'no-memory-saver': { type: 'boolean' },
} as const;

/** Parses run's argv and environment; throws UsageError with a message naming the flag. */
export function parseRunOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): OperatorOptions {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: argv,
      strict: true,
      options: RUN_FLAGS,
    }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const str = (k: string) => values[k] as string | undefined;
  const namespaces = (str('namespaces') ?? env.READYGATE_NAMESPACES ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const ns of namespaces) {
    if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(ns)) throw new UsageError(`--namespaces: invalid namespace ${ns}`);
  }
  const level = (str('log-level') ?? env.LOG_LEVEL ?? 'info') as OperatorOptions['logLevel'];
  if (!LEVELS.includes(level)) throw new UsageError(`--log-level: must be one of ${LEVELS.join(', ')}`);
  const format = str('log-format') ?? env.LOG_FORMAT ?? 'json';
  if (format !== 'json' && format !== 'text') throw new UsageError('--log-format: must be json or text');
  const addr = str('health-addr') ?? '127.0.0.1:8081';
  const am = /^(.*):(\d+)$/.exec(addr);
  if (!am || Number(am[2]) > 65535) throw new UsageError(`--health-addr: expected HOST:PORT, got ${addr}`);
  const opts: OperatorOptions = {
    kubeconfig: str('kubeconfig'),
    namespaces,
    probeConcurrency: positiveInt('probe-concurrency', str('probe-concurrency') ?? '256', 100_000),
    workers: positiveInt('workers', str('workers') ?? '4', 256),
    // A pod reconcile is one PATCH: 32 in flight keep up with --api-qps 200 at 150 ms per write
    // (4 workers behind a saturated event loop wrote 30 gates/s: issue 16 in bench/RESULTS.md).
    podWorkers: positiveInt('pod-workers', str('pod-workers') ?? '32', 1024),
    maxPeriodStretch: positiveInt('max-period-stretch', str('max-period-stretch') ?? '10', 100),
    // Writes are state changes users wait for: at 50/s a 1,000-pod flip took 20 s in bench/.
    // The API server's Priority and Fairness protects it from a busier client.
    apiQps: positiveInt('api-qps', str('api-qps') ?? '200', 100_000),
    apiBurst: positiveInt('api-burst', str('api-burst') ?? '400', 100_000),
    logLevel: level,
    logFormat: format,
    healthHost: (am[1] ?? '').replace(/^\[(.*)\]$/, '$1') || '0.0.0.0',
    healthPort: Number(am[2]),
    metricsAuth: Boolean(values['metrics-auth']),
    leaderElect: Boolean(values['leader-elect']),
    shardBuckets: shardBuckets(str('shard-buckets')),
    leaderElectionNamespace: str('leader-election-namespace') ?? env.POD_NAMESPACE ?? 'readygate-system',
    leaderElectionId: str('leader-election-id') ?? 'readygate',
    identity: env.POD_NAME ?? `${hostname()}-${process.pid}`,
    leaseDurationMs: parseDuration('lease-duration', str('lease-duration') ?? '15s'),
    renewDeadlineMs: parseDuration('renew-deadline', str('renew-deadline') ?? '10s'),
    retryPeriodMs: parseDuration('retry-period', str('retry-period') ?? '2s'),
    enableExec: Boolean(values['enable-exec']),
    allowSecretCa: Boolean(values['allow-secret-ca']),
    allowedConditionPrefixes: conditionPrefixes(str('allowed-condition-prefixes')),
    resyncMs: parseDuration('resync', str('resync') ?? '10m'),
    shutdownGraceMs: parseDuration('shutdown-grace', str('shutdown-grace') ?? '10s'),
    releaseOrphanedGatesAfterMs: parseDuration(
      'release-orphaned-gates-after',
      str('release-orphaned-gates-after') ?? '60s',
    ),
    memorySaver: !values['no-memory-saver'],
  };
  if (!(opts.retryPeriodMs < opts.renewDeadlineMs && opts.renewDeadlineMs < opts.leaseDurationMs)) {
    throw new UsageError('leader election needs retry-period < renew-deadline < lease-duration');
  }
  if (opts.shardBuckets > 0) checkSharding(opts, env);
  return opts;
}

function shardBuckets(flag: string | undefined): number {
  if (flag === undefined || flag === '0') return 0;
  return positiveInt('shard-buckets', flag, MAX_BUCKETS);
}

/** Sharding reuses leader election's namespace and timings, and needs an identity that survives a restart's PID. */
function checkSharding(opts: OperatorOptions, env: NodeJS.ProcessEnv): void {
  if (!opts.leaderElect) throw new UsageError('--shard-buckets needs --leader-elect (its namespace, id and timings)');
  if (!env.POD_NAME) {
    throw new UsageError('--shard-buckets needs POD_NAME (a stable identity; the chart sets it from metadata.name)');
  }
  // The set's id names the leases: <id>-s<B>-bucket-<b> must stay a DNS label.
  if (`${opts.leaderElectionId}-s${opts.shardBuckets}-bucket-${opts.shardBuckets - 1}`.length > 63) {
    throw new UsageError(
      '--leader-election-id: too long to name the shard leases (at most 63 characters with -sN-bucket-N)',
    );
  }
}

/** The id of the set of shard leases: a new bucket count is a new set (docs/sharding.md, decision 6). */
export const shardLeaseId = (opts: Pick<OperatorOptions, 'leaderElectionId' | 'shardBuckets'>) =>
  `${opts.leaderElectionId}-s${opts.shardBuckets}`;

/** The --allowed-condition-prefixes list (default readygate.dev/), each checked; a UsageError otherwise. */
export function conditionPrefixes(flag: string | undefined): string[] {
  if (flag === undefined) return [...DEFAULT_CONDITION_PREFIXES];
  const prefixes = flag
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (prefixes.length === 0) throw new UsageError('--allowed-condition-prefixes: name at least one prefix');
  for (const p of prefixes) {
    const problem = invalidPrefix(p);
    if (problem) throw new UsageError(`--allowed-condition-prefixes: ${problem}`);
  }
  return prefixes;
}

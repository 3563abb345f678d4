// A probe runner over a fixed set of pods, for unit tests: fake clock, captured log, its own
// metrics, no writes waiting and an idle event loop. The probers are the real ones.
import { KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { createProbeManager } from '../../src/controllers/probe-runner.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { createMetrics } from '../../src/observability/metrics.ts';
import { FakeClock } from '../../src/runtime/clock.ts';
import { captureLog } from './log-capture.ts';

export interface TestProbeRunnerOptions {
  /** The clock's start (default the FakeClock's). */
  startAt?: number;
  /** The pod the cache hands out for a name (default: the one in `pods` with that name). */
  get?: (name: string) => V1Pod | undefined;
  owns?: (podUid: string) => boolean;
  missedSince?: (podUid: string) => number | undefined;
}

/** The runner, its clock, metrics and log lines; call `probes.stop()` when done. */
export function testProbeRunner(pods: V1Pod[], opts: TestProbeRunnerOptions = {}) {
  const clock = new FakeClock(opts.startAt);
  const metrics = createMetrics({ defaultMetrics: false });
  const { lines, destination } = captureLog();
  const get = opts.get ?? ((name: string) => pods.find((p) => p.metadata?.name === name));
  const probes = createProbeManager({
    kc: new KubeConfig(),
    clock,
    log: createLogger({ destination }),
    metrics,
    concurrency: 4,
    enableExec: false,
    caches: {
      policies: { get: () => undefined, list: () => [] },
      pods: { get: (_ns, name) => get(name), list: () => pods },
    },
    events: { record: () => {} },
    onDesiredChange: () => {},
    onStatusChange: () => {},
    writes: () => ({ queued: 0, throttled: false }),
    elu: () => 0,
    owns: opts.owns,
    missedSince: opts.missedSince,
  });
  return { clock, metrics, lines, probes };
}

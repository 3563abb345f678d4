// readygate run: starts the operator and ends the process once it stopped. Loaded by
// src/cli/main.ts only when `run` is the command, so that `version` and `--help` do not pay for
// the operator's modules (client-node, undici, prom-client, pino: `npm run bench:cli`).
import { setFlagsFromString } from 'node:v8';
import { createOperator, type Operator } from '../controllers/operator.ts';
import { loadKubeConfig } from '../kube/config.ts';
import { traceLeaseCalls } from '../kube/lease-trace.ts';
import { createLogger, type Logger } from '../observability/logger.ts';
import { type Clock, realClock } from '../runtime/clock.ts';
import { EXIT_MARGIN_MS, ExitDeadline, openHandles } from '../runtime/shutdown.ts';
import { VERSION } from '../version.ts';
import { EXIT } from './exit.ts';
import { parseRunOptions } from './options.ts';

/** `readygate run` with its flags (after `run`); throws UsageError on bad flags. */
export async function runOperator(argv: string[], exit: (code: number) => void): Promise<number> {
  const opts = parseRunOptions(argv);
  // V8 sizes its heap for throughput: with room to spare it lets garbage pile up to several
  // times the live set before collecting (10,000 pods: ~100 MiB live, 690 MiB resident).
  // Memory saver mode collects earlier; it costs GC CPU mostly during mass changes (see
  // bench/RESULTS.md). Set here rather than on node's command line (NODE_OPTIONS refuses
  // it), so the image, the npm bin and the tests run the operator alike.
  if (opts.memorySaver) setFlagsFromString('--memory-saver-mode');
  const log = createLogger({ level: opts.logLevel, format: opts.logFormat });
  log.info(
    {
      version: VERSION,
      namespaces: opts.namespaces,
      leaderElect: opts.leaderElect,
      ...(opts.leaderElect ? { identity: opts.identity } : {}),
      memorySaver: opts.memorySaver,
    },
    'starting readygate',
  );
  const kc = loadKubeConfig(opts.kubeconfig);
  // The Lease calls get a connection of their own, as kube-controller-manager's leader election
  // has a client of its own: on the shared one, renewals wait behind the pod LISTs, watches and
  // writes multiplexed there (its stream limit, and the bodies ahead of theirs).
  const leases = loadKubeConfig(opts.kubeconfig);
  // A Lease call slower than a quarter of the renew deadline is logged with where its time went.
  const stopTrace = opts.leaderElect
    ? traceLeaseCalls(opts.renewDeadlineMs / 4, (phases) =>
        log.warn({ component: 'leases', ...phases }, 'slow Lease call'),
      )
    : undefined;
  try {
    const operator = await createOperator(kc, opts, log, realClock, leases);
    return await runUntilStopped(operator, { gracePeriodMs: opts.shutdownGraceMs, log, exit });
  } finally {
    stopTrace?.();
  }
}

/**
 * Runs the operator until it stops, then ends the process through `exit`. From the moment
 * shutdown begins (signal, lost leadership, failure) the process has the grace period plus
 * EXIT_MARGIN_MS to end; resolves with the exit code (when `exit` did not end the process).
 */
export async function runUntilStopped(
  operator: Pick<Operator, 'manager' | 'run'>,
  o: { gracePeriodMs: number; log: Logger; exit: (code: number) => void; clock?: Clock },
): Promise<number> {
  const { log, exit } = o;
  const deadline = new ExitDeadline({
    clock: o.clock ?? realClock,
    limitMs: o.gracePeriodMs + EXIT_MARGIN_MS,
    exit,
    logger: log,
    pending: () => ({ runnables: operator.manager.unfinished(), openHandles: openHandles() }),
  });
  operator.manager.stopping.addEventListener('abort', () => deadline.arm(), { once: true });
  let code: number = EXIT.ok;
  try {
    await operator.run();
    log.info('stopped');
  } catch (err) {
    log.error({ err: String(err) }, 'operator stopped with an error');
    code = EXIT.failed;
  }
  deadline.finish(code);
  return code;
}

// The readygate command line: dispatches to a subcommand and maps failures to exit codes.

import { setFlagsFromString } from 'node:v8';
import { createOperator, type Operator } from '../controllers/operator.ts';
import { loadKubeConfig } from '../kube/config.ts';
import { createLogger, type Logger } from '../observability/logger.ts';
import { type Clock, realClock } from '../runtime/clock.ts';
import { EXIT_MARGIN_MS, ExitDeadline, openHandles } from '../runtime/shutdown.ts';
import { VERSION } from '../version.ts';
import { parseRunOptions, RUN_HELP, UsageError } from './options.ts';
import { printable } from './terminal.ts';

/** Exit codes, documented in the README. */
export const EXIT = { ok: 0, failed: 1, usage: 2, cluster: 3 } as const;

export const HELP = `Usage: readygate <command> [flags]

Commands:
  run       run the operator (see: readygate run --help)
  check     run one probe round of a ProbePolicy locally and print the result
  explain   explain why a pod is or is not Ready, gate by gate
  version   print the version

Exit codes: 0 ok, 1 check failed or pod not Ready, 2 usage error, 3 cluster or API error.
`;

/**
 * Runs the command line; resolves with the process exit code. `run` ends the process itself
 * through `exit` once the operator stopped, or at its shutdown deadline (src/runtime/shutdown.ts).
 */
export async function main(
  argv: string[],
  exit: (code: number) => void = (code) => process.exit(code),
): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'run': {
        if (rest.includes('--help') || rest.includes('-h')) {
          process.stdout.write(RUN_HELP);
          return EXIT.ok;
        }
        const opts = parseRunOptions(rest);
        // V8 sizes its heap for throughput: with room to spare it lets garbage pile up to several
        // times the live set before collecting (10,000 pods: ~100 MiB live, 690 MiB resident).
        // Memory saver mode collects earlier; it costs GC CPU mostly during mass changes (see
        // bench/RESULTS.md). Set here rather than on node's command line (NODE_OPTIONS refuses
        // it), so the image, the npm bin and the tests run the operator alike.
        if (opts.memorySaver) setFlagsFromString('--memory-saver-mode');
        const log = createLogger({ level: opts.logLevel });
        log.info(
          {
            version: VERSION,
            namespaces: opts.namespaces,
            leaderElect: opts.leaderElect,
            memorySaver: opts.memorySaver,
          },
          'starting readygate',
        );
        const kc = loadKubeConfig(opts.kubeconfig);
        const operator = await createOperator(kc, opts, log);
        return await runUntilStopped(operator, { gracePeriodMs: opts.shutdownGraceMs, log, exit });
      }
      case 'check': {
        const { runCheck } = await import('./check.ts');
        return await runCheck(rest);
      }
      case 'explain': {
        const { runExplain } = await import('./explain.ts');
        return await runExplain(rest);
      }
      case 'version':
      case '--version':
        process.stdout.write(`readygate ${VERSION} (node ${process.versions.node})\n`);
        return EXIT.ok;
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(HELP);
        return command === undefined ? EXIT.usage : EXIT.ok;
      default:
        process.stderr.write(`readygate: unknown command ${JSON.stringify(command)}\n\n${HELP}`);
        return EXIT.usage;
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`readygate ${command}: ${err.message}\n`);
      return EXIT.usage;
    }
    // API errors quote the server's answer: printed as one line with control characters escaped.
    process.stderr.write(`readygate ${command}: ${printable(err instanceof Error ? err.message : String(err))}\n`);
    return EXIT.cluster;
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

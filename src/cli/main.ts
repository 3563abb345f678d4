// The readygate command line: dispatches to a subcommand and maps failures to exit codes.

import { setFlagsFromString } from 'node:v8';
import { createOperator } from '../controllers/operator.ts';
import { loadKubeConfig } from '../kube/config.ts';
import { createLogger } from '../observability/logger.ts';
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

/** Runs the command line; resolves with the process exit code. */
export async function main(argv: string[]): Promise<number> {
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
        try {
          await operator.run();
        } catch (err) {
          log.error({ err: String(err) }, 'operator stopped with an error');
          return EXIT.failed;
        }
        log.info('stopped');
        return EXIT.ok;
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

// The readygate command line: dispatches to a subcommand and maps failures to exit codes.
// Only light modules are imported here: each command's modules (the operator, client-node,
// undici) load when that command runs, so `version` and `--help` start as fast as node itself
// (`npm run bench:cli`).

import { parseArgs } from 'node:util';
import { VERSION } from '../version.ts';
import { isKubeconfigError, kubectlError } from './errors.ts';
import { EXIT } from './exit.ts';
import {
  asProgram,
  CHECK_HELP,
  COMPLETION_HELP,
  EXPLAIN_HELP,
  HELP,
  programName,
  RELEASE_HELP,
  VERSION_HELP,
} from './help.ts';
import { RUN_HELP, UsageError } from './options.ts';
import { printable } from './terminal.ts';

export { EXIT } from './exit.ts';
export { HELP, VERSION_HELP } from './help.ts';

/**
 * Runs the command line; resolves with the process exit code. `run` ends the process itself
 * through `exit` once the operator stopped, or at its shutdown deadline (src/runtime/shutdown.ts).
 */
export async function main(
  argv: string[],
  exit: (code: number) => void = (code) => process.exit(code),
  program: string = programName(process.argv[1]),
): Promise<number> {
  const [command, ...rest] = argv;
  const printHelp = (text: string): number => {
    process.stdout.write(asProgram(text, program));
    return EXIT.ok;
  };
  try {
    switch (command) {
      case 'run': {
        if (wantsHelp(rest)) return printHelp(RUN_HELP);
        const { runOperator } = await import('./run.ts');
        return await runOperator(rest, exit);
      }
      case 'check': {
        if (wantsHelp(rest)) return printHelp(CHECK_HELP);
        const { runCheck } = await import('./check.ts');
        return await runCheck(rest);
      }
      case 'explain': {
        if (wantsHelp(rest)) return printHelp(EXPLAIN_HELP);
        const { runExplain } = await import('./explain.ts');
        return await runExplain(rest);
      }
      case 'release': {
        if (wantsHelp(rest)) return printHelp(RELEASE_HELP);
        const { runRelease } = await import('./release.ts');
        return await runRelease(rest);
      }
      case 'completion': {
        if (wantsHelp(rest)) return printHelp(COMPLETION_HELP);
        const { runCompletion } = await import('./completion.ts');
        return runCompletion(rest);
      }
      case 'version':
      case '--version':
      case '-v':
        return runVersion(rest, printHelp);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        printHelp(HELP);
        return command === undefined ? EXIT.usage : EXIT.ok;
      default:
        process.stderr.write(`${program}: unknown command ${JSON.stringify(command)}\n\n${asProgram(HELP, program)}`);
        return EXIT.usage;
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${program} ${command}: ${err.message}\n`);
      return EXIT.usage;
    }
    process.stderr.write(`${printable(describeFailure(`${program} ${command}`, err))}\n`);
    return EXIT.cluster;
  }
}

/**
 * The line a failed command prints, as kubectl would word it when the cluster could not be
 * reached or answered with an error; else after the invocation (`kubectl readygate explain`).
 * Printed with control characters escaped: API errors quote the server's answer.
 */
export function describeFailure(invocation: string, err: unknown): string {
  if (isKubeconfigError(err)) return `error: ${err.message}`;
  return kubectlError(err) ?? `${invocation}: ${err instanceof Error ? err.message : String(err)}`;
}

/** What `readygate version` prints: the same two facts as text or as a JSON object. */
export function formatVersion(output: 'text' | 'json', node: string = process.versions.node): string {
  if (output === 'json') return `${JSON.stringify({ version: VERSION, node }, null, 2)}\n`;
  return `readygate ${VERSION} (node ${node})\n`;
}

/** `readygate version [--output text|json]`; throws UsageError on any other flag or argument. */
function runVersion(argv: string[], printHelp: (text: string) => number): number {
  let values: { output?: string | undefined; help?: boolean | undefined };
  try {
    values = parseArgs({
      args: argv,
      strict: true,
      options: { output: { type: 'string', short: 'o' }, help: { type: 'boolean', short: 'h' } },
    }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) return printHelp(VERSION_HELP);
  const output = values.output ?? 'text';
  if (output !== 'text' && output !== 'json') throw new UsageError('--output must be text or json');
  process.stdout.write(formatVersion(output));
  return EXIT.ok;
}

const wantsHelp = (args: readonly string[]): boolean => args.includes('--help') || args.includes('-h');

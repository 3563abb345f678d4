// The decisions of `readygate check` before any probe runs: which documents of the file are
// ProbePolicies, whether each is valid as the API server would judge it (src/api/validate.ts),
// and what --port gives a named port in --address mode. Pure: check.ts does the I/O.
import { parseAllDocuments } from 'yaml';
import type { ProbePolicy } from '../api/types.ts';
import type { PolicyValidator } from '../api/validate.ts';
import { UsageError } from './options.ts';

/** Invalid input: a file that is not YAML, or a ProbePolicy the API server would refuse (exit 2). */
export class InvalidInput extends UsageError {}

export interface LintedPolicy {
  /** 1-based position in the file, for messages. */
  document: number;
  name: string;
  /** With the CRD's defaults applied, as a create would store it. */
  policy: ProbePolicy;
}

export interface LintResult {
  policies: LintedPolicy[];
  /** Documents that are not ProbePolicies, one note each. */
  skipped: string[];
  /** One line per error, `<file> document N (name): <field>: ...`. */
  invalid: string[];
}

/**
 * Reads every document of a multi-document YAML file. Documents of another kind are skipped with
 * a note rather than refused: a policy is often kept in one file with the Deployment it gates.
 * A file with no ProbePolicy at all is invalid input.
 */
export function lintPolicies(text: string, file: string, validator: PolicyValidator): LintResult {
  const result: LintResult = { policies: [], skipped: [], invalid: [] };
  for (const [i, doc] of parseAllDocuments(text).entries()) {
    const syntax = doc.errors[0];
    if (syntax) {
      const at = syntax.linePos?.[0];
      const where = at ? `${file}:${at.line}:${at.col}` : file;
      throw new InvalidInput(
        `${where}: invalid YAML: ${syntax.message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '')}`,
      );
    }
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue; // an empty document, e.g. after a leading ---
    const object = (typeof value === 'object' ? value : {}) as {
      kind?: unknown;
      apiVersion?: unknown;
      metadata?: { name?: unknown };
    };
    const label = `${file} document ${i + 1}`;
    if (object.kind !== 'ProbePolicy') {
      result.skipped.push(
        `${label}: skipped, not a ProbePolicy (${String(object.apiVersion ?? '?')} ${String(object.kind ?? typeof value)})`,
      );
      continue;
    }
    const name = typeof object.metadata?.name === 'string' ? object.metadata.name : '';
    const checked = validator.validate(value);
    if (checked.errors.length > 0) {
      result.invalid.push(...checked.errors.map((e) => `${label} (${name || 'no name'}): ${e.message}`));
    } else {
      result.policies.push({ document: i + 1, name, policy: checked.object as unknown as ProbePolicy });
    }
  }
  if (result.policies.length === 0 && result.invalid.length === 0) {
    throw new InvalidInput(`${file} has no ProbePolicy document`);
  }
  return result;
}

const PORT_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** `--port NAME=NUMBER`, repeatable: the container ports a bare --address stands in for. */
export function parsePortFlags(flags: readonly string[]): Map<string, number> {
  const ports = new Map<string, number>();
  for (const flag of flags) {
    const m = /^([^=]+)=(\d+)$/.exec(flag);
    const number = Number(m?.[2]);
    if (!m?.[1] || !PORT_NAME.test(m[1]) || m[1].length > 15 || !/[a-z]/.test(m[1])) {
      throw new UsageError(
        `--port: expected NAME=NUMBER with a container port name such as http, got ${JSON.stringify(flag)}`,
      );
    }
    if (!(number >= 1 && number <= 65535)) throw new UsageError(`--port ${flag}: the number must be from 1 to 65535`);
    ports.set(m[1], number);
  }
  return ports;
}

/** The named port of the policy's handler that --port does not give, as a message; undefined if none. */
export function missingNamedPort(policy: ProbePolicy, ports: ReadonlyMap<string, number>): string | undefined {
  const probe = policy.spec.probe;
  const [handler, port] = probe.tcpSocket
    ? ['tcpSocket', probe.tcpSocket.port]
    : probe.httpGet
      ? ['httpGet', probe.httpGet.port]
      : [undefined, undefined];
  if (typeof port !== 'string' || /^\d+$/.test(port) || ports.has(port)) return undefined;
  return `spec.probe.${handler}.port is the named port "${port}": a bare --address has no container ports; give --port ${port}=NUMBER`;
}

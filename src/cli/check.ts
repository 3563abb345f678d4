// readygate check -f policy.yaml (--pod NAME [-n NS] | --address IP [--port NAME=N]...): checks
// every ProbePolicy of the file as the API server would (src/cli/lint.ts), then runs one probe of
// each from this machine and prints the result with the message the condition would get.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import type { ProbePolicy } from '../api/types.ts';
import { loadValidator } from '../api/validate.ts';
import { loadKubeConfig } from '../kube/config.ts';
import { Debouncer } from '../probes/debouncer.ts';
import { runProbe } from '../probes/probe.ts';
import { EXIT } from './exit.ts';
import { CHECK_HELP } from './help.ts';
import { InvalidInput, type LintedPolicy, lintPolicies, missingNamedPort, parsePortFlags } from './lint.ts';
import { UsageError } from './options.ts';

interface CheckFlags {
  filename: string;
  pod?: string;
  address?: string;
  namespace?: string;
  kubeconfig?: string;
  output: 'text' | 'json';
  ports: Map<string, number>;
}

function parseCheckFlags(argv: string[]): CheckFlags | undefined {
  const values = (() => {
    try {
      return parseArgs({
        args: argv,
        options: {
          filename: { type: 'string', short: 'f' },
          pod: { type: 'string' },
          address: { type: 'string' },
          port: { type: 'string', multiple: true },
          namespace: { type: 'string', short: 'n' },
          kubeconfig: { type: 'string' },
          output: { type: 'string', short: 'o' },
          help: { type: 'boolean', short: 'h' },
        },
      }).values;
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  })();
  if (values.help) return undefined;
  if (!values.filename) throw new UsageError(`-f POLICY.yaml is required\n\n${CHECK_HELP}`);
  if (Boolean(values.pod) === Boolean(values.address)) throw new UsageError('give exactly one of --pod and --address');
  if (values.address && !isIP(values.address))
    throw new UsageError(`--address: ${values.address} is not an IP address`);
  if (values.port && !values.address)
    throw new UsageError('--port is for --address; a pod has its own container ports');
  const output = values.output ?? 'text';
  if (output !== 'text' && output !== 'json') throw new UsageError('--output must be text or json');
  return { ...values, filename: values.filename, output, ports: parsePortFlags(values.port ?? []) };
}

/** `readygate check`: resolves with the exit code (src/cli/exit.ts). */
export async function runCheck(argv: string[]): Promise<number> {
  const flags = parseCheckFlags(argv);
  if (!flags) {
    process.stdout.write(CHECK_HELP);
    return EXIT.ok;
  }
  let text: string;
  try {
    text = readFileSync(flags.filename, 'utf8');
  } catch (err) {
    throw new InvalidInput(`cannot read ${flags.filename}: ${(err as Error).message}`);
  }
  // A bad spec is invalid input (exit 2), never a failing probe: nothing is probed then.
  const lint = lintPolicies(text, flags.filename, loadValidator());
  for (const note of lint.skipped) process.stderr.write(`${note}\n`);
  if (lint.invalid.length > 0) {
    throw new InvalidInput(`the API server would refuse this policy:\n  ${lint.invalid.join('\n  ')}`);
  }
  if (flags.address) {
    const missing = lint.policies.map((p) => missingNamedPort(p.policy, flags.ports)).find(Boolean);
    if (missing) throw new InvalidInput(missing);
  }
  const needsCluster = Boolean(flags.pod) || lint.policies.some((p) => p.policy.spec.probe.exec);
  const kc = needsCluster ? loadKubeConfig(flags.kubeconfig) : undefined;
  const pod = flags.address ? addressPod(flags.address, flags.ports) : await readPod(kc as KubeConfig, flags);
  const reports = [];
  for (const linted of lint.policies) reports.push(await probeOnce(linted, pod, kc, flags.output));
  if (flags.output === 'json') {
    const json = reports.map((r) => r.json);
    process.stdout.write(`${JSON.stringify(json.length === 1 ? json[0] : json, null, 2)}\n`);
  }
  // The worst outcome decides: could not look (3) over failed (1) over passed (0).
  const codes = reports.map((r) => r.code);
  return codes.includes(EXIT.cluster) ? EXIT.cluster : codes.includes(EXIT.failed) ? EXIT.failed : EXIT.ok;
}

/** A bare address stands for a pod whose one container has the --port ports. */
function addressPod(address: string, ports: ReadonlyMap<string, number>): V1Pod {
  const containerPorts = [...ports].map(([name, containerPort]) => ({ name, containerPort }));
  return {
    metadata: { name: address },
    spec: { containers: containerPorts.length > 0 ? [{ name: 'address', ports: containerPorts }] : [] },
    status: { podIP: address },
  };
}

/** The pod to probe; without -n, the namespace of the kubeconfig's context, as kubectl. */
async function readPod(kc: KubeConfig, flags: CheckFlags): Promise<V1Pod> {
  const namespace = flags.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
  const pod = await kc
    .makeApiClient(CoreV1Api)
    .readNamespacedPod({ name: flags.pod ?? '', namespace })
    .catch((err: unknown) => {
      // undici says only "fetch failed"; the reason (ECONNREFUSED, a TLS error) is its cause.
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why = cause ? ` (${cause.code ?? cause.message})` : '';
      throw new Error(
        `cannot read pod ${namespace}/${flags.pod} from ${kc.getCurrentCluster()?.server}: ${(err as Error).message}${why}`,
      );
    });
  if (!pod.status?.podIP) throw new UsageError(`pod ${namespace}/${flags.pod} has no IP yet`);
  return pod;
}

async function probeOnce(linted: LintedPolicy, pod: V1Pod, kc: KubeConfig | undefined, output: 'text' | 'json') {
  const policy: ProbePolicy = linted.policy;
  const result = await runProbe({ probe: policy.spec.probe, pod, caPem: policy.spec.probe.httpGet?.tls?.caBundle, kc });
  // One result through a fresh debouncer with thresholds of 1: the message a condition would carry.
  const once = new Debouncer({ probe: { successThreshold: 1, failureThreshold: 1 } }, undefined, 0);
  const condition = once.observe(result, Date.now());
  const passed = result.outcome === 'success';
  // An exec probe the API server would not run observed nothing: an API error, not a failure.
  const notRun = result.outcome === 'unknown';
  if (output === 'text') {
    const verdict = notRun
      ? '  condition: unchanged (nothing observed; not counted toward failureThreshold)'
      : `  condition: ${policy.spec.conditionType}=${condition?.status} reason=${condition?.reason}`;
    process.stdout.write(
      `${passed ? 'PASS' : notRun ? 'NOT RUN' : 'FAIL'} ${result.message}${result.warning ? `\n  warning: ${result.warning}` : ''}\n` +
        `  policy: ${linted.name}\n${verdict}\n` +
        `  took ${Math.round(result.durationMs)} ms${result.couldNotLook ? ' (readygate could not reach the target)' : ''}\n`,
    );
  }
  const code = passed ? EXIT.ok : notRun ? EXIT.cluster : EXIT.failed;
  return { code, json: { policy: linted.name, passed, result, condition } };
}

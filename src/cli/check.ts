// readygate check -f policy.yaml (--pod NAME [-n NS] | --address IP): runs one probe of a
// ProbePolicy from this machine and prints the result with the message the condition would get.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { parse } from 'yaml';
import type { ProbePolicy } from '../api/types.ts';
import { loadKubeConfig } from '../kube/config.ts';
import { Debouncer } from '../probes/debouncer.ts';
import { runProbe } from '../probes/probe.ts';
import { CHECK_HELP } from './help.ts';
import { UsageError } from './options.ts';

/** `readygate check`: resolves with the exit code. */
export async function runCheck(argv: string[]): Promise<number> {
  const { values } = (() => {
    try {
      return parseArgs({
        args: argv,
        options: {
          filename: { type: 'string', short: 'f' },
          pod: { type: 'string' },
          address: { type: 'string' },
          namespace: { type: 'string', short: 'n' },
          kubeconfig: { type: 'string' },
          output: { type: 'string', short: 'o' },
          help: { type: 'boolean', short: 'h' },
        },
      });
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  })();
  if (values.help) {
    process.stdout.write(CHECK_HELP);
    return 0;
  }
  if (!values.filename) throw new UsageError(`-f POLICY.yaml is required\n\n${CHECK_HELP}`);
  if (Boolean(values.pod) === Boolean(values.address)) throw new UsageError('give exactly one of --pod and --address');
  const output = values.output ?? 'text';
  if (output !== 'text' && output !== 'json') throw new UsageError('--output must be text or json');
  let policy: ProbePolicy;
  try {
    policy = parse(readFileSync(values.filename, 'utf8')) as ProbePolicy;
  } catch (err) {
    throw new UsageError(`cannot read ${values.filename}: ${(err as Error).message}`);
  }
  if (policy?.kind !== 'ProbePolicy' || !policy.spec?.probe) {
    throw new UsageError(`${values.filename} is not a ProbePolicy with spec.probe`);
  }

  let pod: V1Pod;
  const kc = values.pod || policy.spec.probe.exec ? loadKubeConfig(values.kubeconfig) : undefined;
  if (values.address) {
    if (!isIP(values.address)) throw new UsageError(`--address: ${values.address} is not an IP address`);
    pod = { metadata: { name: values.address }, spec: { containers: [] }, status: { podIP: values.address } };
  } else {
    const namespace = values.namespace ?? policy.metadata?.namespace ?? 'default';
    pod = await kc!.makeApiClient(CoreV1Api).readNamespacedPod({ name: values.pod ?? '', namespace });
    if (!pod.status?.podIP) throw new UsageError(`pod ${namespace}/${values.pod} has no IP yet`);
  }
  const result = await runProbe({
    probe: policy.spec.probe,
    pod,
    caPem: policy.spec.probe.httpGet?.tls?.caBundle,
    kc,
  });
  // One result through a fresh debouncer with thresholds of 1: the message a condition would carry.
  const once = new Debouncer({ probe: { successThreshold: 1, failureThreshold: 1 } }, undefined, 0);
  const condition = once.observe(result, Date.now());
  const passed = result.outcome === 'success';
  // An exec probe the API server would not run observed nothing: an API error, not a failure.
  const notRun = result.outcome === 'unknown';
  if (output === 'json') {
    process.stdout.write(`${JSON.stringify({ passed, result, condition }, null, 2)}\n`);
  } else {
    const verdict = notRun
      ? '  condition: unchanged (nothing observed; not counted toward failureThreshold)'
      : `  condition: ${policy.spec.conditionType}=${condition?.status} reason=${condition?.reason}`;
    process.stdout.write(
      `${passed ? 'PASS' : notRun ? 'NOT RUN' : 'FAIL'} ${result.message}${result.warning ? `\n  warning: ${result.warning}` : ''}\n` +
        `${verdict}\n` +
        `  took ${Math.round(result.durationMs)} ms${result.couldNotLook ? ' (readygate could not reach the target)' : ''}\n`,
    );
  }
  return passed ? 0 : notRun ? 3 : 1;
}

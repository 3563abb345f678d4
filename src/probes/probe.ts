// Runs one probe of a policy against one pod: picks the handler, resolves the port, and keeps
// compiled HTTP probers and exec clients so a period's work is only the network exchange.
import type { KubeConfig } from '@kubernetes/client-node';
import type { ExecProber } from './exec.ts';
import { probeGrpc } from './grpc.ts';
import { createHttpProber, type HttpProber } from './http.ts';
import type { HttpExchange } from './http-exchange.ts';
import { resolvePort } from './ports.ts';
import { probeTcp } from './tcp.ts';
import {
  type IntOrString,
  type PodContainer,
  PROBE_DEFAULTS,
  ProbeConfigError,
  type ProbeResult,
  type ProbeSpec,
} from './types.ts';

/** The parts of a Pod the engine reads (a client-node V1Pod fits). */
export interface PodLike {
  metadata?: { name?: string; namespace?: string };
  spec?: { containers: PodContainer[] };
  status?: { podIP?: string };
}

export interface RunProbeInput {
  probe: ProbeSpec;
  pod: PodLike;
  /** CA PEM resolved by the caller from tls.caSecretRef; overrides tls.caBundle. */
  caPem?: string;
  /** Required for exec probes (the pods/exec subresource). */
  kc?: KubeConfig;
  /** Aborted when the result is no longer wanted; a probe already running ends at its own deadline. */
  signal?: AbortSignal;
  /** HTTP transport override (benchmarks, tests). */
  httpExchange?: HttpExchange;
}

// Compiled per spec object: informer caches hand out the same object until the policy changes.
const httpProbers = new WeakMap<object, { caPem: string | undefined; exchange: unknown; prober: HttpProber }>();
const execProbers = new WeakMap<KubeConfig, ExecProber>();

/**
 * The longest one run of this probe may take by its own deadlines. An exec probe has two of
 * timeoutSeconds each (the session opening, then the command: exec.ts runExec); the others one.
 */
export function longestRunMs(probe: Pick<ProbeSpec, 'exec' | 'timeoutSeconds'>): number {
  const timeoutMs = (probe.timeoutSeconds ?? PROBE_DEFAULTS.timeoutSeconds) * 1000;
  return probe.exec ? 2 * timeoutMs : timeoutMs;
}

/** Runs the policy's probe against the pod once; resolves (never rejects) with the result. */
export async function runProbe(input: RunProbeInput): Promise<ProbeResult> {
  const { probe, pod } = input;
  const timeoutMs = (probe.timeoutSeconds ?? PROBE_DEFAULTS.timeoutSeconds) * 1000;
  const fail = (message: string): ProbeResult => ({ outcome: 'failure', couldNotLook: false, message, durationMs: 0 });
  if (input.signal?.aborted) return fail('probe cancelled');
  const containers = pod.spec?.containers ?? [];
  const podIP = pod.status?.podIP;
  const port = (p: IntOrString): number | ProbeResult => {
    const r = resolvePort(p, containers);
    return r.ok ? r.port : fail(r.message);
  };
  try {
    if (probe.exec) {
      if (!input.kc) return fail('exec probe needs a KubeConfig');
      const container = probe.exec.container || containers[0]?.name;
      if (!container) return fail('exec probe: the pod has no containers');
      let prober = execProbers.get(input.kc);
      if (!prober) {
        // Loaded on first use: exec.ts pulls in ws, which a process that only runs network probes
        // (the engine benchmark) never needs.
        const { createExecProber } = await import('./exec.ts');
        // Another probe may have created it while this one awaited the import.
        prober = execProbers.get(input.kc) ?? createExecProber(input.kc);
        execProbers.set(input.kc, prober);
      }
      return await prober.probe({
        namespace: pod.metadata?.namespace ?? '',
        pod: pod.metadata?.name ?? '',
        container,
        command: probe.exec.command,
        timeoutMs,
      });
    }
    if (!podIP) return fail('pod has no IP yet');
    if (probe.tcpSocket) {
      const p = port(probe.tcpSocket.port);
      return typeof p === 'number' ? await probeTcp({ host: podIP, port: p, timeoutMs }) : p;
    }
    if (probe.grpc) {
      const p = port(probe.grpc.port);
      if (typeof p !== 'number') return p;
      return await probeGrpc({
        host: podIP,
        port: p,
        timeoutMs,
        ...(probe.grpc.service ? { service: probe.grpc.service } : {}),
      });
    }
    if (probe.httpGet) {
      const p = port(probe.httpGet.port);
      if (typeof p !== 'number') return p;
      return await httpProberFor(probe.httpGet, input).probe({ host: podIP, port: p, timeoutMs });
    }
    return fail('probe has no handler (tcpSocket, httpGet, grpc or exec)');
  } catch (err) {
    if (err instanceof ProbeConfigError) return fail(err.message);
    throw err;
  }
}

function httpProberFor(action: NonNullable<ProbeSpec['httpGet']>, input: RunProbeInput): HttpProber {
  const cached = httpProbers.get(action);
  if (cached && cached.caPem === input.caPem && cached.exchange === input.httpExchange) return cached.prober;
  const prober = createHttpProber(action, {
    ...(input.caPem ? { caPem: input.caPem } : {}),
    ...(input.httpExchange ? { exchange: input.httpExchange } : {}),
  });
  httpProbers.set(action, { caPem: input.caPem, exchange: input.httpExchange, prober });
  return prober;
}

// Minimal input types for the probe engine, mirroring `spec.probe` (docs/api.md). They are kept
// here (not imported from src/api) so the engine does not depend on the generated CRD types;
// the generated ProbePolicy spec is structurally assignable to these.

/** Kubernetes int-or-string: a port number or the name of a container port. */
export type IntOrString = number | string;

export interface HTTPHeader {
  name: string;
  value: string;
}

export interface TCPSocketAction {
  port: IntOrString;
}

export interface HTTPGetTLS {
  /** Verify the serving certificate (default false, as the kubelet never verifies). */
  verify?: boolean;
  /** Name to send as SNI and to check the certificate against; default: the pod IP. */
  serverName?: string;
  /** Inline PEM CA bundle; a CA resolved from caSecretRef is passed as `caPem` instead. */
  caBundle?: string;
}

export interface HTTPGetAction {
  port: IntOrString;
  path?: string;
  scheme?: 'HTTP' | 'HTTPS';
  httpHeaders?: HTTPHeader[];
  /** Status codes or inclusive ranges such as "204" or "200-399"; default the kubelet's [200,400). */
  successCodes?: string[];
  /** Must match the first 10 KiB of the body (decoded as UTF-8). */
  bodyRegex?: string;
  tls?: HTTPGetTLS;
}

export interface GRPCAction {
  port: IntOrString;
  service?: string;
}

export interface ExecAction {
  command: string[];
  /** Container to run in; default the pod's first container. */
  container?: string;
}

export interface ProbeSpec {
  tcpSocket?: TCPSocketAction;
  httpGet?: HTTPGetAction;
  grpc?: GRPCAction;
  exec?: ExecAction;
  initialDelaySeconds?: number;
  periodSeconds?: number;
  timeoutSeconds?: number;
  successThreshold?: number;
  failureThreshold?: number;
}

/**
 * `success`, `failure` and `timeout` are observations of the pod and count toward the
 * thresholds. `unknown` means the probe could not be run at all, so nothing was observed: an
 * exec probe whose pods/exec call failed (API server unreachable, 401/403, 429, 5xx, upgrade
 * refused). The debouncer neither counts nor resets on it, as the kubelet throws away a
 * probe that errored (pkg/kubelet/prober/worker.go); `couldNotLook` is always true with it.
 */
export type ProbeOutcome = 'success' | 'failure' | 'timeout' | 'unknown';

export interface ProbeResult {
  outcome: ProbeOutcome;
  /**
   * True when the result says more about the operator than the pod (connect timeout,
   * EHOSTUNREACH, ENETUNREACH, fd exhaustion, API server unreachable for exec); it feeds the
   * failsafe. For TCP, HTTP and gRPC such a result is still a failure or timeout for the pod
   * (the failsafe is what stops a mass flip); only `unknown` results are not counted.
   */
  couldNotLook: boolean;
  /**
   * Names the target as the spec describes it (e.g. `HTTP GET http://<podIP>:8080/healthz`) and
   * the status as a number, a fixed phrase or a classified error name. Never text the pod
   * controls: no body, reason phrase, redirect Location, gRPC details, exec output, or the
   * message of a TLS error (it quotes the peer's certificate). It may reach a pod condition.
   */
  message: string;
  /** Set when the probe succeeded with a caveat (e.g. a redirect to another host not followed); same rules as message. */
  warning?: string;
  durationMs: number;
}

/** A container port as found in `pod.spec.containers[].ports[]`. */
export interface ContainerPort {
  name?: string;
  containerPort: number;
  protocol?: string;
}

/** The parts of `pod.spec.containers[]` the engine reads. */
export interface PodContainer {
  name: string;
  ports?: ContainerPort[];
}

/** core/v1 Probe defaults, applied where the spec leaves a field unset. */
export const PROBE_DEFAULTS = {
  initialDelaySeconds: 0,
  periodSeconds: 10,
  timeoutSeconds: 1,
  successThreshold: 1,
  failureThreshold: 3,
} as const;

/** Thrown when a probe spec cannot be run at all (e.g. a Host header, an invalid regex). */
export class ProbeConfigError extends Error {
  override name = 'ProbeConfigError';
}

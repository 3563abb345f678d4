// The ProbePolicy API as the rest of the operator sees it: the generated types plus the
// constants of the contract in docs/api.md.
export type * from './generated/probepolicy.ts';

export const GROUP = 'readygate.dev';
export const GROUP_VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${GROUP_VERSION}`;
export const KIND = 'ProbePolicy';
export const PLURAL = 'probepolicies';
/**
 * The pod annotation where gate injection (charts/readygate/templates/gate-injection.yaml) lists the
 * gates it added, comma-separated: those gates were put there by readygate, not by the pod's author.
 */
export const INJECTED_GATES_ANNOTATION = `${GROUP}/injected-gates`;

/** Pure: the gate types the pod's injected-gates annotation lists. */
export function injectedGates(annotations: Readonly<Record<string, string>> | undefined): string[] {
  const value = annotations?.[INJECTED_GATES_ANNOTATION];
  return value ? value.split(',').filter((t) => t.length > 0) : [];
}

/**
 * Reasons of the gate condition on pods (docs/api.md, "What the operator writes on each pod"). Failsafe and DryRun
 * never reach a pod: a held flip leaves the pod's condition as it is, and a dry run patches nothing.
 */
export const PodConditionReason = {
  ProbeSucceeded: 'ProbeSucceeded',
  ProbeFailed: 'ProbeFailed',
  ProbeTimeout: 'ProbeTimeout',
  FailOpenTimeout: 'FailOpenTimeout',
  Failsafe: 'Failsafe',
  DryRun: 'DryRun',
} as const;
export type PodConditionReason = (typeof PodConditionReason)[keyof typeof PodConditionReason];

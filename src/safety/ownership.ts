// Conditions readygate owns. A ProbePolicy names the pod condition it writes, and without a rule
// a policy could name another controller's condition (`target-health.elbv2.k8s.aws/…`) and
// overwrite that controller's False with True, making the pod Ready. So readygate writes only
// condition types under prefixes allowed at install (--allowed-condition-prefixes, the chart's
// conditions.allowedPrefixes; default readygate.dev/), and a policy naming any other type is
// refused: its status says why, and it writes nothing.
//
// Why an allow-list rather than server-side apply with a field manager and no force: apply
// would conflict with readygate's own earlier strategic merge patches (another manager name) on
// every upgrade, and a conflict is only found by writing; the allow-list decides before any
// write, and the chart's ValidatingAdmissionPolicy refuses such policies at creation too.

/** The default allow-list: readygate's own API group. */
export const DEFAULT_CONDITION_PREFIXES: readonly string[] = ['readygate.dev/'];

// The chart's values.schema.json allows the same: a DNS subdomain, "/", and optionally the start of a name.
const PREFIX = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/([A-Za-z0-9][-A-Za-z0-9_.]*)?$/;

/** Checks an allow-list entry (a DNS subdomain, "/", maybe a name's start); returns an error message or undefined. */
export function invalidPrefix(prefix: string): string | undefined {
  if (prefix.length > 316 || !PREFIX.test(prefix)) {
    return `${JSON.stringify(prefix)} is not a condition type prefix: expected a DNS subdomain followed by "/", such as readygate.dev/`;
  }
  return undefined;
}

/** Why readygate must not write this condition type, or undefined when it may. */
export function conditionTypeProblem(
  conditionType: string,
  allowed: readonly string[],
): { reason: 'ConditionTypeNotAllowed'; message: string } | undefined {
  if (allowed.some((p) => conditionType.startsWith(p) && conditionType.length > p.length)) return undefined;
  return {
    reason: 'ConditionTypeNotAllowed',
    message: `conditionType ${conditionType} is not under a prefix this installation may write (${allowed.join(', ')}); readygate never writes another controller's condition. Use a type such as ${allowed[0] ?? 'readygate.dev/'}<name>, or add the prefix to the chart's conditions.allowedPrefixes`,
  };
}

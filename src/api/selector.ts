// Label selector matching with metav1.LabelSelector semantics (k8s.io/apimachinery/pkg/labels).
import type { LabelSelector } from './types.ts';

/** Reports whether labels satisfy every matchLabels pair and every matchExpressions requirement. */
export function selectorMatches(
  selector: LabelSelector | undefined,
  labels: Record<string, string> | undefined,
): boolean {
  const have = labels ?? {};
  // for…in rather than Object.entries: this runs for every pod on every policy reconcile.
  const matchLabels = selector?.matchLabels;
  for (const key in matchLabels) {
    if (Object.hasOwn(matchLabels, key) && have[key] !== matchLabels[key]) return false;
  }
  for (const req of selector?.matchExpressions ?? []) {
    const present = Object.hasOwn(have, req.key);
    const value = have[req.key];
    switch (req.operator) {
      case 'In':
        if (!present || !(req.values ?? []).includes(value as string)) return false;
        break;
      case 'NotIn':
        // As in apimachinery: a missing key satisfies NotIn.
        if (present && (req.values ?? []).includes(value as string)) return false;
        break;
      case 'Exists':
        if (!present) return false;
        break;
      case 'DoesNotExist':
        if (present) return false;
        break;
      default:
        return false; // unknown operators match nothing (the CRD's enum forbids them anyway)
    }
  }
  return true;
}

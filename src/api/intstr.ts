// IntOrString arithmetic as k8s.io/apimachinery/pkg/util/intstr.GetScaledValueFromIntOrPercent.

/**
 * Resolves a count or "N%" against total. Percentages round up, as a PodDisruptionBudget's
 * maxUnavailable does: with one matched pod, "50%" still lets that one pod flip to False.
 */
export function scaledValue(value: number | string | undefined, total: number, fallback = '50%'): number {
  const v = value ?? fallback;
  if (typeof v === 'number') return Math.max(0, Math.floor(v));
  const m = /^(\d{1,3})%$/.exec(v);
  if (!m) throw new Error(`invalid int-or-percent value ${JSON.stringify(v)}`);
  return Math.ceil((Number(m[1]) * total) / 100);
}

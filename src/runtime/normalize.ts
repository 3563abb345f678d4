// client-node hands out two shapes of the same object: items of a typed list call are
// deserialised models (Date timestamps, no kind/apiVersion), watch events are raw JSON (string
// timestamps, kind/apiVersion set). Comparing or patching across the two shapes causes phantom
// diffs and write loops, so every object is normalised to the wire shape once, at the boundary.

/** The kind and apiVersion to fill in when an object lacks them. */
export interface GroupVersionKind {
  apiVersion: string;
  kind: string;
}

// Kubernetes objects are shallow trees; anything deeper is not an API object and is left alone.
const MAX_DEPTH = 64;

/**
 * Formats a Date as the API server does: metav1.Time has second precision ("2026-11-27T05:31:23Z");
 * a Date with milliseconds can only come from a metav1.MicroTime, which is written with 6 digits.
 */
export function formatTime(date: Date): string {
  const iso = date.toISOString();
  const millis = date.getUTCMilliseconds();
  return millis === 0 ? `${iso.slice(0, 19)}Z` : `${iso.slice(0, 23)}000Z`;
}

/**
 * Returns `value` with every Date replaced by its RFC3339 string; subtrees without a Date are
 * shared, not copied (watch objects come back unchanged), and the input is never mutated.
 */
export function datesToStrings<T>(value: T): T {
  return convert(value, 0) as T;
}

function convert(value: unknown, depth: number): unknown {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : formatTime(value);
  if (value === null || typeof value !== 'object' || depth >= MAX_DEPTH) return value;
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      const next = convert(item, depth + 1);
      if (next !== item) {
        out ??= value.slice();
        out[i] = next;
      }
    }
    return out ?? value;
  }
  // for…in, not Object.entries: this walks every object of every watch event, and the entry
  // arrays were the operator's largest source of garbage (155 MiB in a 10,000-pod start-up).
  const record = value as Record<string, unknown>;
  let out: Record<string, unknown> | undefined;
  for (const k in record) {
    if (!Object.hasOwn(record, k)) continue;
    const item = record[k];
    const next = convert(item, depth + 1);
    if (next !== item) {
      out ??= { ...record };
      out[k] = next;
    }
  }
  return out ?? value;
}

/**
 * Normalises an API object to its wire shape: Dates become RFC3339 strings and a missing
 * kind/apiVersion is filled from `gvk`; the input is not mutated.
 */
export function normalizeObject<T extends object>(obj: T, gvk: GroupVersionKind): T {
  const converted = datesToStrings(obj) as T & { kind?: string; apiVersion?: string };
  if (converted.kind && converted.apiVersion) return converted;
  const copy = (converted === obj ? { ...obj } : converted) as T & { kind?: string; apiVersion?: string };
  copy.kind ||= gvk.kind;
  copy.apiVersion ||= gvk.apiVersion;
  return copy;
}

/** Returns a `normalize(obj)` function for one kind, as the informer wrapper expects. */
export function normalizerFor<T extends object>(gvk: GroupVersionKind): (obj: T) => T {
  return (obj) => normalizeObject(obj, gvk);
}

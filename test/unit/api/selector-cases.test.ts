// The shared selector table (test/support/selector-cases.ts) through selectorMatches: each case
// carries its expected verdict, so the table is checked here and, against kube-apiserver's own
// verdicts, in test/integration/gate-injection.test.ts.
import { describe, expect, it } from 'vitest';
import { selectorMatches } from '../../../src/api/selector.ts';
import { SELECTOR_CASES } from '../../support/selector-cases.ts';

// Pod label syntax (k8s.io/apimachinery validation.IsQualifiedName and IsValidLabelValue).
const NAME = '[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?';
const LABEL_KEY = new RegExp(`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?${NAME}$`);
const LABEL_VALUE = new RegExp(`^(${NAME})?$`);

describe('selector cases', () => {
  it.each(SELECTOR_CASES.map((c) => [c.name, c] as const))('%s', (_, c) => {
    expect(selectorMatches(c.selector, c.labels)).toBe(c.matches);
  });

  it('has at least 40 cases with distinct names, both verdicts and every operator both ways', () => {
    expect(SELECTOR_CASES.length).toBeGreaterThanOrEqual(40);
    expect(new Set(SELECTOR_CASES.map((c) => c.name)).size).toBe(SELECTOR_CASES.length);
    for (const op of ['In', 'NotIn', 'Exists', 'DoesNotExist']) {
      const verdicts = SELECTOR_CASES.filter((c) => c.selector.matchExpressions?.some((r) => r.operator === op)).map(
        (c) => c.matches,
      );
      expect(new Set(verdicts), op).toEqual(new Set([true, false]));
    }
    const withLabels = SELECTOR_CASES.filter((c) => Object.keys(c.selector.matchLabels ?? {}).length > 0);
    expect(new Set(withLabels.map((c) => c.matches))).toEqual(new Set([true, false]));
  });

  it('uses only valid pod labels and selector values, so the API server accepts every pod and policy', () => {
    for (const c of SELECTOR_CASES) {
      const values = [
        ...Object.entries(c.labels),
        ...Object.entries(c.selector.matchLabels ?? {}),
        ...(c.selector.matchExpressions ?? []).flatMap((r) => (r.values ?? ['']).map((v) => [r.key, v])),
      ];
      for (const [key, value] of values) {
        expect(key, c.name).toMatch(LABEL_KEY);
        expect(value, c.name).toMatch(LABEL_VALUE);
      }
    }
  });
});

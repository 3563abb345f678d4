import { describe, expect, it } from 'vitest';
import { conditionTypeProblem, DEFAULT_CONDITION_PREFIXES, invalidPrefix } from '../../../src/safety/ownership.ts';

describe('conditionTypeProblem', () => {
  it('allows types under an allowed prefix', () => {
    expect(conditionTypeProblem('readygate.dev/payments', DEFAULT_CONDITION_PREFIXES)).toBeUndefined();
    expect(conditionTypeProblem('example.com/x', ['readygate.dev/', 'example.com/'])).toBeUndefined();
  });

  it("refuses another controller's condition, naming the allowed prefixes", () => {
    const p = conditionTypeProblem('target-health.elbv2.k8s.aws/k8s-tg', DEFAULT_CONDITION_PREFIXES);
    expect(p?.reason).toBe('ConditionTypeNotAllowed');
    expect(p?.message).toContain('readygate.dev/');
  });

  it('refuses look-alikes and the bare prefix', () => {
    for (const t of ['readygate.dev', 'readygate.dev/', 'readygate.dev.evil.com/x', 'xreadygate.dev/x', 'Ready']) {
      expect(conditionTypeProblem(t, DEFAULT_CONDITION_PREFIXES), t).toBeDefined();
    }
  });
});

describe('invalidPrefix', () => {
  it('accepts DNS subdomains followed by a slash', () => {
    expect(invalidPrefix('readygate.dev/')).toBeUndefined();
    expect(invalidPrefix('gates.example.com/')).toBeUndefined();
    expect(invalidPrefix('readygate.dev/payments-')).toBeUndefined(); // the start of a name, as the chart allows
  });

  it('refuses anything else with a message', () => {
    for (const p of ['', '/', 'readygate.dev', 'Readygate.dev/', 'a_b.com/', '*.com/']) {
      expect(invalidPrefix(p), p).toMatch(/not a condition type prefix/);
    }
  });
});

// The offline validator of `readygate check` over the same cases the real API server is tested
// with (test/support/policy-cases.ts); test/integration/validate-agreement.test.ts runs both.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { isTransitionRule } from '../../../src/api/cel-rules.ts';
import { CRD_URL, loadValidator } from '../../../src/api/validate.ts';
import {
  INVALID_SPECS,
  policy,
  UNKNOWN_FIELD_SPECS,
  VALID_DEFAULTED,
  VALID_SPECS,
  valid,
  withProbe,
} from '../../support/policy-cases.ts';

const validator = loadValidator();
const check = (spec: Record<string, unknown>) => validator.validate(policy('p', spec));

describe('offline ProbePolicy validation', () => {
  it('accepts a valid policy and applies the CRD defaults, as a create stores it', () => {
    const r = check(valid());
    expect(r.errors).toEqual([]);
    expect(r.object.spec).toEqual(VALID_DEFAULTED);
  });

  it.each(VALID_SPECS.map((s, i) => [i, s] as const))('accepts valid spec %i', (_i, spec) => {
    expect(check(spec).errors).toEqual([]);
  });

  it.each(INVALID_SPECS)('refuses %s, naming the field as the API server does', (_name, spec, field, words) => {
    const messages = check(spec).errors.map((e) => e.message);
    expect(
      messages.some((m) => m.startsWith(`${field}:`) && m.includes(words)),
      messages.join('\n'),
    ).toBe(true);
  });

  it.each(UNKNOWN_FIELD_SPECS)('refuses %s as unknown, as fieldValidation=Strict', (_name, spec, field) => {
    expect(check(spec).errors.map((e) => e.message)).toContain(`${field}: unknown field`);
  });

  it('reports unknown fields alone, as a strict decode fails before validation', () => {
    const r = check({ ...valid(), conditionType: { name: 'x' }, mode: 'Sometimes' });
    expect(r.errors.map((e) => e.message)).toEqual(['spec.conditionType.name: unknown field']);
  });

  it('words CEL errors as the API server: field path from fieldPath, the rule message', () => {
    const r = check(withProbe({ tcpSocket: { port: 80 }, timeoutSeconds: 10, periodSeconds: 10 }));
    expect(r.errors.map((e) => e.message)).toEqual([
      'spec.probe.timeoutSeconds: Invalid value: "object": timeoutSeconds must be less than periodSeconds',
    ]);
  });

  it('checks the rules against defaulted values (timeoutSeconds 15 against the default period 10)', () => {
    const r = check(withProbe({ tcpSocket: { port: 80 }, timeoutSeconds: 15 }));
    expect(r.errors.map((e) => e.field)).toEqual(['spec.probe.timeoutSeconds']);
  });

  it('stops at a value of the wrong type and does not run the rules, as the API server', () => {
    const r = check(withProbe({ grpc: { port: 'grpc' }, timeoutSeconds: 10, periodSeconds: 10 }));
    expect(r.errors.map((e) => e.field)).toEqual(['spec.probe.grpc.port', '<nil>']);
  });

  it('refuses a document that is not a readygate.dev/v1alpha1 ProbePolicy with a name', () => {
    const r = validator.validate({ apiVersion: 'v1', kind: 'ConfigMap', metadata: {}, spec: valid() });
    expect(r.errors.map((e) => e.field)).toEqual(['apiVersion', 'kind', 'metadata.name']);
  });

  it('evaluates every rule of the CRD except the transition rules, so none is skipped silently', () => {
    const cases = [valid(), ...VALID_SPECS, ...INVALID_SPECS.map((c) => c[1])];
    for (const spec of cases) check(spec);
    const rules = validator.rules.filter((r) => !isTransitionRule(r.rule)).map((r) => `${r.schemaPath}: ${r.rule}`);
    expect(rules.length).toBeGreaterThan(15);
    expect([...validator.evaluated].sort()).toEqual([...new Set(rules)].sort());
    // The one transition rule (conditionType immutable) is not run on a create.
    expect(validator.rules.filter((r) => isTransitionRule(r.rule)).map((r) => r.schemaPath)).toEqual([
      'spec.conditionType',
    ]);
  });

  it('uses messageExpression and reason as the API server does', () => {
    const crd = readFileSync(CRD_URL, 'utf8').replace(
      'message: timeoutSeconds must be less than periodSeconds',
      `messageExpression: "'timeout ' + string(self.timeoutSeconds) + 's is not below the period'"
                      reason: FieldValueForbidden`,
    );
    const r = loadValidator(crd).validate(
      policy('p', withProbe({ tcpSocket: { port: 80 }, timeoutSeconds: 10, periodSeconds: 10 })),
    );
    expect(r.errors.map((e) => e.message)).toEqual([
      'spec.probe.timeoutSeconds: Forbidden: timeout 10s is not below the period',
    ]);
  });

  it('fails to load a CRD with a rule that does not compile, naming the rule', () => {
    const crd = readFileSync(CRD_URL, 'utf8').replace("rule: self.startsWith('/')", "rule: self.startsWith('/'");
    expect(() => loadValidator(crd)).toThrow(/CRD rule at spec\.probe\.httpGet\.path does not compile/);
  });

  it('fails loudly on a rule calling a function the offline environment lacks', () => {
    const crd = readFileSync(CRD_URL, 'utf8').replace("rule: self.startsWith('/')", 'rule: self.isURL()');
    const v = loadValidator(crd);
    expect(() => v.validate(policy('p', valid()))).toThrow(/cannot be evaluated offline: self\.isURL\(\)/);
  });
});

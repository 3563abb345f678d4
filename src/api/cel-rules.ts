// The CRD's x-kubernetes-validations rules, compiled once with @bufbuild/cel and evaluated over a
// ProbePolicy as the API server does. Kubernetes' CEL environment adds cel-go's strings extension
// (split, lowerAscii, ...) to the standard library (matches, size, contains, startsWith, int,
// string, type, has, all, filter); @bufbuild/cel's `strings` extension has the ones the CRD uses.
// A rule that fails to parse throws at compile time, and one that calls an unknown function
// throws at evaluation: no rule is ever silently skipped, except transition rules (below).
import { type CelInput, celEnv, isCelError, parse, plan } from '@bufbuild/cel';
import { strings } from '@bufbuild/cel/ext';
import type { FieldError, Schema, ValidationRule } from './validate.ts';

type Program = ReturnType<typeof plan>;

export interface CompiledRule extends ValidationRule {
  /** Where in the schema the rule sits, e.g. spec.probe (for error messages about the CRD). */
  schemaPath: string;
  program: Program;
  messageProgram?: Program;
}

const env = celEnv({ funcs: strings });

/**
 * Transition rules compare with oldSelf, the stored object: on a create there is none, and the
 * API server does not evaluate them. The rule is parsed (so a syntax error still fails) but skipped.
 */
export const isTransitionRule = (rule: string): boolean => /\boldSelf\b/.test(rule);

function compile(expr: string, where: string): Program {
  try {
    return plan(env, parse(expr));
  } catch (e) {
    throw new Error(`CRD rule at ${where} does not compile: ${expr}: ${(e as Error).message}`);
  }
}

/** Compiles every rule of the schema into the `compiled` map, keyed by the schema object it sits on. */
export function compileRules(schema: Schema, path = '', compiled = new Map<Schema, CompiledRule[]>()) {
  const rules = (schema['x-kubernetes-validations'] ?? []).map((r) => ({
    ...r,
    schemaPath: path,
    program: compile(r.rule, path),
    messageProgram: r.messageExpression ? compile(r.messageExpression, `${path} (messageExpression)`) : undefined,
  }));
  if (rules.length > 0) compiled.set(schema, rules);
  for (const [key, sub] of Object.entries(schema.properties ?? {}))
    compileRules(sub, path ? `${path}.${key}` : key, compiled);
  if (schema.items) compileRules(schema.items, `${path}[*]`, compiled);
  if (typeof schema.additionalProperties === 'object') compileRules(schema.additionalProperties, `${path}.*`, compiled);
  return compiled;
}

/** JSON → CEL values by the schema: integers as int (bigint), objects as maps. */
export function toCel(value: unknown, schema: Schema | undefined): CelInput {
  if (Array.isArray(value)) return value.map((v) => toCel(v, schema?.items));
  if (typeof value === 'number') {
    const integral = schema?.type === 'integer' || schema?.['x-kubernetes-int-or-string'];
    return integral && Number.isInteger(value) ? BigInt(value) : value;
  }
  if (typeof value === 'object' && value !== null) {
    const extra = typeof schema?.additionalProperties === 'object' ? schema.additionalProperties : undefined;
    return new Map(
      Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, toCel(v, schema?.properties?.[k] ?? extra)]),
    );
  }
  return value as CelInput;
}

const REASONS: Record<string, string> = {
  FieldValueRequired: 'Required value',
  FieldValueForbidden: 'Forbidden',
  FieldValueDuplicate: 'Duplicate value',
};

/** One rule over one value: undefined when it holds, the API server's error otherwise. */
function evaluate(rule: CompiledRule, self: CelInput, value: unknown, path: string, evaluated: Set<string>) {
  const result = rule.program({ self });
  if (isCelError(result) || typeof result !== 'boolean') {
    throw new Error(
      `CRD rule at ${rule.schemaPath} cannot be evaluated offline: ${rule.rule}: ${isCelError(result) ? result.message : `returned ${String(result)}`}`,
    );
  }
  evaluated.add(`${rule.schemaPath}: ${rule.rule}`);
  if (result) return undefined;
  let message = rule.message ?? `failed rule: ${rule.rule}`;
  if (rule.messageProgram) {
    const m = rule.messageProgram({ self });
    if (typeof m === 'string' && m.trim() !== '') message = m;
  }
  const field = `${path}${rule.fieldPath ?? ''}`;
  const reason = rule.reason ? REASONS[rule.reason] : undefined;
  const kind = reason ? `${reason}: ${message}` : `Invalid value: ${JSON.stringify(typeName(value))}: ${message}`;
  return { field, message: `${field}: ${kind}` } satisfies FieldError;
}

function typeName(value: unknown): string {
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

/**
 * Evaluates the rules on every value that has any, depth first. `evaluated` collects the rules
 * that ran (tests use it to prove that every rule of the CRD runs offline).
 */
export function ruleErrors(
  value: unknown,
  schema: Schema,
  path: string,
  compiled: Map<Schema, CompiledRule[]>,
  out: FieldError[],
  evaluated: Set<string>,
): void {
  const rules = compiled.get(schema);
  if (rules) {
    const self = toCel(value, schema);
    for (const rule of rules) {
      if (isTransitionRule(rule.rule)) continue;
      const e = evaluate(rule, self, value, path, evaluated);
      if (e) out.push(e);
    }
  }
  if (Array.isArray(value) && schema.items) {
    for (const [i, v] of value.entries())
      ruleErrors(v, schema.items as Schema, `${path}[${i}]`, compiled, out, evaluated);
  } else if (typeof value === 'object' && value !== null) {
    const extra = typeof schema.additionalProperties === 'object' ? schema.additionalProperties : undefined;
    for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
      const sub = schema.properties?.[key] ?? extra;
      if (sub) ruleErrors(v, sub, path ? `${path}.${key}` : key, compiled, out, evaluated);
    }
  }
}

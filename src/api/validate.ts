// Offline validation of a ProbePolicy as the API server does it on a create with
// fieldValidation=Strict: unknown fields refused, structural defaults applied, the OpenAPI v3
// schema checked, then the x-kubernetes-validations CEL rules evaluated. The schema is read from
// crds/readygate.dev_probepolicies.yaml, the single source of truth, so a rule added there is
// checked here without a code change; a rule that does not compile fails the load (and a test).
// Loaded lazily by `readygate check` only: @bufbuild/cel and the CRD are not read for --help.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { type CompiledRule, compileRules, ruleErrors } from './cel-rules.ts';

export const CRD_URL = new URL('../../crds/readygate.dev_probepolicies.yaml', import.meta.url);
export const API_VERSION = 'readygate.dev/v1alpha1';

/** The subset of OpenAPI v3 (structural schema) the CRD uses. */
export interface Schema {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  format?: string;
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  items?: Schema;
  required?: string[];
  enum?: unknown[];
  default?: unknown;
  nullable?: boolean;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  minProperties?: number;
  maxProperties?: number;
  pattern?: string;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-validations'?: ValidationRule[];
}

export interface ValidationRule {
  rule: string;
  message?: string;
  messageExpression?: string;
  fieldPath?: string;
  reason?: string;
}

/** One error as the API server words it: `<field>: <kind>: <detail>`. */
export interface FieldError {
  field: string;
  message: string;
}

export interface ValidationResult {
  /** The object with the schema's defaults applied (what a create would store). */
  object: Record<string, unknown>;
  errors: FieldError[];
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The quoting of k8s.io/apimachinery field.Error: strings quoted, numbers bare. */
function shown(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  return JSON.stringify(typeName(value));
}

function typeName(value: unknown): string {
  if (Array.isArray(value)) return 'array';
  if (value === null) return 'null';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

const err = (field: string, message: string): FieldError => ({ field, message: `${field}: ${message}` });

// --- structural defaulting ---------------------------------------------------------------------

/**
 * Applies defaults top-down, as the API server's structural defaulting: a missing (or null)
 * property with a default gets a copy of it, then the walk continues into it (failsafe: {} gets
 * failsafe.maxUnavailable). Nulls of non-nullable properties without a default are dropped.
 */
export function applyDefaults(value: unknown, schema: Schema): unknown {
  if (Array.isArray(value)) return schema.items ? value.map((v) => applyDefaults(v, schema.items as Schema)) : value;
  if (!isObject(value)) return value;
  const out: Json = { ...value };
  for (const [key, sub] of Object.entries(schema.properties ?? {})) {
    if (out[key] === null && !sub.nullable) delete out[key];
    if (!(key in out) && sub.default !== undefined) out[key] = structuredClone(sub.default);
    if (key in out) out[key] = applyDefaults(out[key], sub);
  }
  const extra = schema.additionalProperties;
  if (isObject(extra)) {
    for (const key of Object.keys(out)) {
      if (schema.properties?.[key]) continue;
      if (out[key] === null && !(extra as Schema).nullable) delete out[key];
      else out[key] = applyDefaults(out[key], extra as Schema);
    }
  }
  return out;
}

// --- unknown fields (fieldValidation=Strict) ----------------------------------------------------

/** Fields the schema does not know, which a Strict create refuses (and any other create prunes). */
export function unknownFields(value: unknown, schema: Schema, path: string, out: FieldError[] = []): FieldError[] {
  if (schema['x-kubernetes-preserve-unknown-fields']) return out;
  if (Array.isArray(value)) {
    if (schema.items)
      for (const [i, v] of value.entries()) unknownFields(v, schema.items as Schema, `${path}[${i}]`, out);
    return out;
  }
  // Every key of an object where the schema has no properties is unknown, even under a string.
  if (!isObject(value)) return out;
  const extra = schema.additionalProperties;
  for (const [key, v] of Object.entries(value)) {
    const sub = schema.properties?.[key] ?? (isObject(extra) ? (extra as Schema) : undefined);
    const field = join(path, key);
    if (sub) unknownFields(v, sub, field, out);
    else if (extra !== true) out.push(err(field, 'unknown field'));
  }
  return out;
}

const join = (path: string, key: string) => (path ? `${path}.${key}` : key);

// --- OpenAPI v3 schema -------------------------------------------------------------------------

const INT_RANGES: Record<string, [bigint, bigint]> = {
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
};

/** The type check; a wrong type stops the checks below it and, as on the API server, all CEL rules. */
function typeError(value: unknown, schema: Schema, path: string): FieldError | undefined {
  const actual = typeName(value);
  if (schema['x-kubernetes-int-or-string']) {
    if (actual === 'integer' || actual === 'string') return undefined;
    return err(
      path,
      `Invalid value: ${JSON.stringify(actual)}: ${path} in body must be of type integer,string: ${JSON.stringify(actual)}`,
    );
  }
  const want = schema.type;
  if (!want || actual === want || (want === 'number' && actual === 'integer')) return undefined;
  return err(
    path,
    `Invalid value: ${JSON.stringify(actual)}: ${path} in body must be of type ${want}: ${JSON.stringify(actual)}`,
  );
}

function scalarErrors(
  value: unknown,
  schema: Schema,
  path: string,
  out: FieldError[],
  blocking: { type: boolean },
): void {
  const invalid = (detail: string) => out.push(err(path, `Invalid value: ${shown(value)}: ${path} in body ${detail}`));
  if (schema.enum && !schema.enum.includes(value)) {
    blocking.type = true;
    out.push(
      err(
        path,
        `Unsupported value: ${shown(value)}: supported values: ${schema.enum.map((v) => JSON.stringify(v)).join(', ')}`,
      ),
    );
  }
  if (typeof value === 'number') {
    const range = schema.format ? INT_RANGES[schema.format] : undefined;
    if (range && Number.isInteger(value) && (BigInt(value) < range[0] || BigInt(value) > range[1])) {
      invalid(`must be of format ${schema.format}`);
    }
    if (schema.minimum !== undefined && value < schema.minimum)
      invalid(`should be greater than or equal to ${schema.minimum}`);
    if (schema.maximum !== undefined && value > schema.maximum)
      invalid(`should be less than or equal to ${schema.maximum}`);
  }
  if (typeof value === 'string') {
    // Lengths in characters (code points), as the API server counts them; its message says bytes.
    const length = [...value].length;
    if (schema.maxLength !== undefined && length > schema.maxLength) {
      out.push(err(path, `Too long: may not be more than ${schema.maxLength} bytes`));
    }
    if (schema.minLength !== undefined && length < schema.minLength)
      invalid(`should be at least ${schema.minLength} chars long`);
    if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(value))
      invalid(`should match '${schema.pattern}'`);
  }
}

/**
 * Schema errors of one value and everything below it. A wrong type or a value outside an enum
 * blocks the CEL rules, as on the API server (its hasBlockingErr).
 */
export function schemaErrors(
  value: unknown,
  schema: Schema,
  path: string,
  out: FieldError[],
  blocking: { type: boolean },
): void {
  const wrongType = typeError(value, schema, path);
  if (wrongType) {
    out.push(wrongType);
    blocking.type = true;
    return;
  }
  scalarErrors(value, schema, path, out, blocking);
  if (Array.isArray(value)) {
    if (schema.maxItems !== undefined && value.length > schema.maxItems) {
      out.push(err(path, `Too many: ${value.length}: must have at most ${schema.maxItems} items`));
    }
    if (schema.minItems !== undefined && value.length < schema.minItems) {
      out.push(
        err(path, `Invalid value: ${value.length}: ${path} in body should have at least ${schema.minItems} items`),
      );
    }
    if (schema.items)
      for (const [i, v] of value.entries()) schemaErrors(v, schema.items as Schema, `${path}[${i}]`, out, blocking);
    return;
  }
  if (!isObject(value)) return;
  const count = Object.keys(value).length;
  if (schema.maxProperties !== undefined && count > schema.maxProperties) {
    out.push(err(path, `Too many: ${count}: must have at most ${schema.maxProperties} items`));
  }
  for (const key of schema.required ?? []) {
    if (!(key in value)) out.push(err(join(path, key), 'Required value'));
  }
  const extra = isObject(schema.additionalProperties) ? (schema.additionalProperties as Schema) : undefined;
  for (const [key, v] of Object.entries(value)) {
    const sub = schema.properties?.[key] ?? extra;
    if (sub) schemaErrors(v, sub, join(path, key), out, blocking);
  }
}

// --- the whole object --------------------------------------------------------------------------

/** The fields of metav1.ObjectMeta, which a strict decode knows under metadata. */
const OBJECT_META_FIELDS = new Set([
  'name',
  'generateName',
  'namespace',
  'selfLink',
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'labels',
  'annotations',
  'ownerReferences',
  'finalizers',
  'managedFields',
]);

export interface PolicyValidator {
  validate(document: unknown): ValidationResult;
  /** Every non-transition rule that has run at least once, as `<schema path>: <rule>`. */
  readonly evaluated: Set<string>;
  readonly rules: CompiledRule[];
}

/** Reads the CRD (crds/ by default) and compiles its rules; throws if any rule does not compile. */
export function loadValidator(crdText: string = readFileSync(CRD_URL, 'utf8')): PolicyValidator {
  const crd = parseYaml(crdText) as { spec: { versions: { name: string; schema: { openAPIV3Schema: Schema } }[] } };
  const version = crd.spec.versions.find((v) => `readygate.dev/${v.name}` === API_VERSION);
  if (!version) throw new Error(`the CRD does not serve ${API_VERSION}`);
  const schema = version.schema.openAPIV3Schema;
  const compiled = compileRules(schema);
  const evaluated = new Set<string>();
  return {
    evaluated,
    rules: [...compiled.values()].flat(),
    validate: (document) => validateWith(document, schema, compiled, evaluated),
  };
}

function validateWith(
  document: unknown,
  schema: Schema,
  compiled: Map<Schema, CompiledRule[]>,
  evaluated: Set<string>,
): ValidationResult {
  if (!isObject(document)) {
    return { object: {}, errors: [err('<root>', `Invalid value: ${shown(document)}: must be an object`)] };
  }
  // The status subresource: a create resets status, so it is neither checked nor kept.
  const { status: _status, ...input } = document;
  const errors: FieldError[] = [];
  if (input.apiVersion !== API_VERSION) {
    errors.push(err('apiVersion', `Unsupported value: ${shown(input.apiVersion)}: supported values: "${API_VERSION}"`));
  }
  if (input.kind !== 'ProbePolicy') {
    errors.push(err('kind', `Unsupported value: ${shown(input.kind)}: supported values: "ProbePolicy"`));
  }
  const metadata = isObject(input.metadata) ? input.metadata : {};
  if (!metadata.name && !metadata.generateName) {
    errors.push(err('metadata.name', 'Required value: name or generateName is required'));
  }
  // metadata is the API server's ObjectMeta, not part of the CRD's schema: its field names and
  // the presence of a name are checked, not the values (labels, annotations, owners).
  const { metadata: _metadata, ...rest } = schema.properties ?? {};
  const body: Schema = { ...schema, properties: rest };
  const { metadata: _m, ...content } = input;
  // A strict decode fails before any validation: unknown fields are the only errors then.
  const unknown = [
    ...Object.keys(metadata)
      .filter((k) => !OBJECT_META_FIELDS.has(k))
      .map((k) => err(`metadata.${k}`, 'unknown field')),
    ...unknownFields(content, body, ''),
  ];
  if (unknown.length > 0) return { object: input, errors: [...errors, ...unknown] };
  const object = applyDefaults(input, schema) as Json;
  const { metadata: _m2, ...defaulted } = object;
  const blocking = { type: false };
  schemaErrors(defaulted, body, '', errors, blocking);
  // As the API server: with a value of the wrong type the rules cannot run, and it says so.
  if (blocking.type) {
    errors.push(
      err(
        '<nil>',
        'Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation',
      ),
    );
  } else {
    ruleErrors(defaulted, body, '', compiled, errors, evaluated);
  }
  return { object, errors };
}

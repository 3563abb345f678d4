// The offline validator of `readygate check` (src/api/validate.ts) against the real API server:
// every case of test/support/policy-cases.ts through a server-side dry-run create with
// fieldValidation=Strict and through the validator must get the same verdict, and a refusal must
// name the same fields.
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadValidator } from '../../src/api/validate.ts';
import { adminKubeConfig, createNamespace, deleteNamespace } from '../support/kube.ts';
import {
  INVALID_SPECS,
  policy,
  type Spec,
  UNKNOWN_FIELD_SPECS,
  VALID_SPECS,
  valid,
  withHttp,
  withProbe,
} from '../support/policy-cases.ts';

let kc: KubeConfig;
let ns: string;
beforeAll(async () => {
  kc = adminKubeConfig();
  ns = await createNamespace(kc, 'agree');
});
afterAll(async () => {
  await deleteNamespace(kc, ns);
});

// Beyond the CRD test's table: cases where the order of the checks shows.
const EXTRA: [string, Spec][] = [
  ['a wrong type and a failing rule', withProbe({ grpc: { port: 'grpc' }, timeoutSeconds: 10, periodSeconds: 10 })],
  ['two schema errors', withProbe({ tcpSocket: { port: 80 }, periodSeconds: 0, failureThreshold: 0 })],
  ['a timeout above the default period', withProbe({ tcpSocket: { port: 80 }, timeoutSeconds: 15 })],
  ['a null optional field', { ...valid(), mode: null }],
  ['a boolean port', withProbe({ tcpSocket: { port: true } })],
  ['an empty failsafe', { ...valid(), failsafe: {} }],
  ['a null failsafe', { ...valid(), failsafe: null }],
  ['a period beyond int32', withProbe({ tcpSocket: { port: 80 }, periodSeconds: 3_000_000_000 })],
  ['a period as a string', withProbe({ tcpSocket: { port: 80 }, periodSeconds: '10' })],
  ['a fractional period', withProbe({ tcpSocket: { port: 80 }, periodSeconds: 1.5 })],
  ['a null list item', withProbe({ exec: { command: ['true', null] } })],
  [
    '65 labels',
    { ...valid(), selector: { matchLabels: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`l${i}`, 'v'])) } },
  ],
  ['a label key of 318 characters', { ...valid(), selector: { matchLabels: { ['k'.repeat(318)]: 'v' } } }],
  [
    'an unknown field in a selector requirement',
    { ...valid(), selector: { matchExpressions: [{ key: 'a', operator: 'Exists', value: 'x' }] } },
  ],
  ['a path of 2048 two-byte characters', withHttp({ path: `/${'é'.repeat(2047)}` })],
  ['a path of 2049 two-byte characters', withHttp({ path: `/${'é'.repeat(2048)}` })],
  ['a port of 65535 as a string', withProbe({ tcpSocket: { port: '65535' } })],
  ['an object for a string', { ...valid(), conditionType: { name: 'x' } }],
];

// Whole objects, for what lies outside spec.
const BODIES: [string, Record<string, unknown>][] = [
  ['an unknown metadata field', { ...policy('agree', valid()), metadata: { name: 'agree', labelz: { a: 'b' } } }],
  [
    'metadata labels and annotations',
    { ...policy('agree', valid()), metadata: { name: 'agree', labels: { a: 'b' }, annotations: { c: 'd' } } },
  ],
  ['no name', { ...policy('agree', valid()), metadata: {} }],
  ['a status, which a create resets', { ...policy('agree', valid()), status: { matchedPods: -1 } }],
];

const CASES: [string, Spec][] = [
  ['valid()', valid()],
  ...VALID_SPECS.map((s, i) => [`valid spec ${i}`, s] as [string, Spec]),
  ...INVALID_SPECS.map(([name, spec]) => [name, spec] as [string, Spec]),
  ...UNKNOWN_FIELD_SPECS.map(([name, spec]) => [name, spec] as [string, Spec]),
  ...EXTRA,
];

/** The fields a refusal names: its causes, or the unknown fields of a strict decoding error. */
function serverFields(err: unknown): { code: number; fields: string[]; message: string } {
  const e = err as { code?: number; body?: string };
  const status = JSON.parse(e.body ?? '{}') as { message?: string; details?: { causes?: { field?: string }[] } };
  const message = status.message ?? String(err);
  const unknown = [...message.matchAll(/unknown field "([^"]+)"/g)].map((m) => m[1] ?? '');
  const causes = (status.details?.causes ?? []).map((c) => c.field ?? '').filter((f) => f && !f.startsWith('<'));
  return { code: e.code ?? 0, fields: [...new Set(unknown.length > 0 ? unknown : causes)].sort(), message };
}

describe('offline validation agrees with the API server', () => {
  const validator = loadValidator();
  let agreed = 0;
  afterAll(() => {
    console.log(`offline validator agreed with kube-apiserver on ${agreed} of ${CASES.length + BODIES.length} cases`);
  });

  it.each([...CASES.map(([name, spec]) => [name, policy('agree', spec)] as const), ...BODIES])(
    '%s',
    async (_name, body) => {
      const server = await kc
        .makeApiClient(CustomObjectsApi)
        .createNamespacedCustomObject({
          group: 'readygate.dev',
          version: 'v1alpha1',
          plural: 'probepolicies',
          namespace: ns,
          body,
          dryRun: 'All',
          fieldValidation: 'Strict',
        })
        .then((created) => ({ accepted: true as const, created: created as { spec: Spec } }))
        .catch((err: unknown) => ({ accepted: false as const, ...serverFields(err) }));
      const offline = validator.validate(body);
      const offlineFields = [...new Set(offline.errors.map((e) => e.field).filter((f) => !f.startsWith('<')))].sort();
      const detail = `server: ${JSON.stringify(server)}\noffline: ${offline.errors.map((e) => e.message).join('\n')}`;
      expect(offline.errors.length === 0, detail).toBe(server.accepted);
      if (server.accepted) expect(offline.object.spec).toEqual(server.created.spec);
      else expect(offlineFields, detail).toEqual(server.fields);
      agreed++;
    },
  );
});

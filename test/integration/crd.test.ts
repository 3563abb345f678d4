// The ProbePolicy CRD against a real kube-apiserver: installation, defaults, printer columns, and
// the schema + CEL rules that reject bad input with a message naming the field.
import { readFileSync } from 'node:fs';
import { ApiextensionsV1Api, type KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { adminKubeConfig, createNamespace, deleteNamespace, probePolicies, statusMessage } from '../support/kube.ts';
import { INVALID_SPECS, policy, type Spec, VALID_DEFAULTED, VALID_SPECS, valid } from '../support/policy-cases.ts';

let kc: KubeConfig;
let ns: string;

beforeAll(async () => {
  kc = adminKubeConfig();
  ns = await createNamespace(kc, 'crd');
});
afterAll(async () => {
  await deleteNamespace(kc, ns);
});

describe('ProbePolicy CRD', () => {
  it('runs against the real kube-apiserver version the tools module pins', () => {
    const pinned = readFileSync(new URL('../../tools/kube/go.mod', import.meta.url), 'utf8').match(
      /k8s\.io\/kubernetes (v[0-9.]+)/,
    )?.[1];
    console.log(`kube-apiserver ${inject('controlPlane').version}`);
    expect(inject('controlPlane').version).toBe(pinned);
  });

  it('is Established with the short name, status subresource and printer columns', async () => {
    const crd = await kc
      .makeApiClient(ApiextensionsV1Api)
      .readCustomResourceDefinition({ name: 'probepolicies.readygate.dev' });
    expect(crd.status?.conditions?.find((c) => c.type === 'Established')?.status).toBe('True');
    expect(crd.status?.acceptedNames?.shortNames).toEqual(['ppol']);
    const version = crd.spec.versions[0];
    expect(version?.subresources?.status).toBeDefined();
    expect(version?.additionalPrinterColumns?.map((c) => c.name)).toEqual([
      'Condition Type',
      'Matched',
      'Ready',
      'Ungated',
      'Age',
    ]);
    // The CEL rules survived the trip (a client that drops x-kubernetes-* keys would lose them).
    expect(JSON.stringify(version?.schema)).toContain('exactly one of tcpSocket, httpGet, grpc or exec must be set');
  });

  it('accepts a valid policy and applies the documented defaults', async () => {
    const created = (await probePolicies(kc).create(ns, policy('defaults', valid()))) as { spec: Spec };
    expect(created.spec).toEqual(VALID_DEFAULTED);
    const read = (await probePolicies(kc).get(ns, 'defaults')) as { spec: Spec };
    expect(read.spec).toEqual(created.spec);
  });

  it('accepts every handler and the optional fields of docs/api.md', async () => {
    for (const [i, spec] of VALID_SPECS.entries()) {
      await expect(probePolicies(kc).create(ns, policy(`ok-${i}`, spec))).resolves.toBeDefined();
    }
  });

  it('keeps conditionType immutable', async () => {
    await probePolicies(kc).create(ns, policy('immutable', valid()));
    const current = (await probePolicies(kc).get(ns, 'immutable')) as { spec: Spec };
    const err = await probePolicies(kc)
      .replace(ns, 'immutable', { ...current, spec: { ...current.spec, conditionType: 'readygate.dev/other' } })
      .catch((e: unknown) => e);
    expect(statusMessage(err)).toContain('spec.conditionType: Invalid value');
    expect(statusMessage(err)).toContain('conditionType is immutable');
  });

  // Each case (test/support/policy-cases.ts): a spec the API server must reject, the field its
  // message must name, and the words.
  it.each(INVALID_SPECS)('rejects %s, naming the field', async (_name, spec, field, words) => {
    const err = await probePolicies(kc)
      .create(ns, policy('invalid', spec))
      .then(() => new Error('the API server accepted it'))
      .catch((e: unknown) => e);
    const message = statusMessage(err);
    expect((err as { code?: number }).code, message).toBe(422);
    expect(message).toContain(`${field}:`);
    expect(message).toContain(words);
  });
});

// The ProbePolicy CRD against a real kube-apiserver: installation, defaults, printer columns, and
// the schema + CEL rules that reject bad input with a message naming the field.
import { readFileSync } from 'node:fs';
import { ApiextensionsV1Api, HttpMethod, type KubeConfig, RequestContext } from '@kubernetes/client-node';
import { type Dispatcher, getGlobalDispatcher } from 'undici';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { rest } from '../../src/kube/rest.ts';
import { adminKubeConfig, createNamespace, deleteNamespace, probePolicies, statusMessage } from '../support/kube.ts';
import { INVALID_SPECS, policy, type Spec, VALID_DEFAULTED, VALID_SPECS, valid } from '../support/policy-cases.ts';

/** `kubectl get` of one policy as the API server renders it: a meta.k8s.io/v1 Table. */
async function table(namespace: string, name: string): Promise<{ columns: string[]; cells: unknown[] }> {
  const url = `${kc.getCurrentCluster()?.server}/apis/readygate.dev/v1alpha1/namespaces/${namespace}/probepolicies/${name}`;
  const ctx = new RequestContext(url, HttpMethod.GET);
  await kc.applySecurityAuthentication(ctx);
  const dispatcher = (ctx.getDispatcher() as Dispatcher | undefined) ?? getGlobalDispatcher();
  const res = await dispatcher.request({
    origin: new URL(url).origin,
    path: new URL(url).pathname,
    method: 'GET',
    headers: { ...ctx.getHeaders(), Accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' },
  });
  const body = (await res.body.json()) as {
    kind: string;
    columnDefinitions: { name: string }[];
    rows: { cells: unknown[] }[];
  };
  expect(body.kind).toBe('Table');
  return { columns: body.columnDefinitions.map((c) => c.name), cells: body.rows[0]?.cells ?? [] };
}

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
      'Ready',
      'Matched',
      'Passing',
      'Ungated',
      'Reason',
      'Age',
    ]);
    // The CEL rules survived the trip (a client that drops x-kubernetes-* keys would lose them).
    expect(JSON.stringify(version?.schema)).toContain('exactly one of tcpSocket, httpGet, grpc or exec must be set');
  });

  it('renders the printer columns from the status in a server-side Table', async () => {
    await probePolicies(kc).create(ns, policy('columns', valid()));
    const at = '2026-11-30T12:00:00Z';
    await rest(kc, {
      method: 'PATCH',
      path: `/apis/readygate.dev/v1alpha1/namespaces/${ns}/probepolicies/columns/status`,
      contentType: 'application/merge-patch+json',
      body: {
        status: {
          observedGeneration: 1,
          matchedPods: 4,
          readyPods: 3,
          ungatedPods: 1,
          failingPods: ['columns-3'],
          conditions: [
            {
              type: 'Ready',
              status: 'True',
              reason: 'Probing',
              message: 'probing 4 matched pods',
              lastTransitionTime: at,
            },
            { type: 'Degraded', status: 'True', reason: 'Conflict', message: 'older policy', lastTransitionTime: at },
          ],
        },
      },
    });
    const { columns, cells } = await table(ns, 'columns');
    expect(columns).toEqual(['Name', 'Condition Type', 'Ready', 'Matched', 'Passing', 'Ungated', 'Reason', 'Age']);
    expect(cells.slice(0, 7)).toEqual(['columns', 'readygate.dev/payments-db', 'True', 4, 3, 1, 'Conflict']);
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

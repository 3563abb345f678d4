// The ProbePolicy CRD against a real kube-apiserver: installation, defaults, printer columns, and
// the schema + CEL rules that reject bad input with a message naming the field.
import { readFileSync } from 'node:fs';
import { ApiextensionsV1Api, HttpMethod, type KubeConfig, RequestContext } from '@kubernetes/client-node';
import { type Dispatcher, getGlobalDispatcher } from 'undici';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { rest } from '../../src/kube/rest.ts';
import { adminKubeConfig, createNamespace, deleteNamespace, probePolicies, statusMessage } from '../support/kube.ts';

type Spec = Record<string, unknown>;
const valid = (): Spec => ({
  conditionType: 'readygate.dev/payments-db',
  selector: { matchLabels: { app: 'payments' } },
  probe: { httpGet: { port: 'http', path: '/ready' } },
});
const policy = (name: string, spec: Spec) => ({
  apiVersion: 'readygate.dev/v1alpha1',
  kind: 'ProbePolicy',
  metadata: { name },
  spec,
});
const withProbe = (probe: Record<string, unknown>): Spec => ({ ...valid(), probe });
const withHttp = (httpGet: Record<string, unknown>): Spec => withProbe({ httpGet: { port: 8080, ...httpGet } });

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
    expect(created.spec).toEqual({
      conditionType: 'readygate.dev/payments-db',
      selector: { matchLabels: { app: 'payments' } },
      mode: 'Continuous',
      injection: 'Enabled',
      dryRun: false,
      failsafe: { maxUnavailable: '50%', failOpenAfterSeconds: 0 },
      probe: {
        httpGet: { port: 'http', path: '/ready', scheme: 'HTTP' },
        initialDelaySeconds: 0,
        periodSeconds: 10,
        timeoutSeconds: 1,
        successThreshold: 1,
        failureThreshold: 3,
      },
    });
    const read = (await probePolicies(kc).get(ns, 'defaults')) as { spec: Spec };
    expect(read.spec).toEqual(created.spec);
  });

  it('accepts every handler and the optional fields of docs/api.md', async () => {
    const specs: Spec[] = [
      withProbe({ tcpSocket: { port: 5432 } }),
      withProbe({ grpc: { port: 9090, service: 'payments.v1.Ledger' } }),
      withProbe({ exec: { command: ['pg_isready', '-q'], container: 'db' } }),
      withProbe({
        httpGet: {
          port: 'https',
          path: '/healthz?full=1',
          scheme: 'HTTPS',
          httpHeaders: [{ name: 'X-Check', value: 'gate' }],
          successCodes: ['200-299', '304'],
          bodyRegex: '"status":"ok"',
          tls: { verify: true, serverName: 'payments.shop.svc', caSecretRef: { name: 'ca', key: 'ca.crt' } },
        },
        initialDelaySeconds: 5,
        periodSeconds: 3,
        timeoutSeconds: 2,
        successThreshold: 2,
        failureThreshold: 5,
      }),
      withProbe({
        httpGet: {
          port: 8443,
          scheme: 'HTTPS',
          tls: { verify: true, caConfigMapRef: { name: 'kube-root-ca.crt', key: 'ca.crt' } },
        },
      }),
      {
        ...valid(),
        mode: 'StartupOnly',
        dryRun: true,
        failsafe: { maxUnavailable: 3, failOpenAfterSeconds: 600 },
        selector: { matchExpressions: [{ key: 'tier', operator: 'Exists' }] },
      },
    ];
    // The largest timeout the CRD allows.
    specs.push(withProbe({ tcpSocket: { port: 5432 }, timeoutSeconds: 60, periodSeconds: 61 }));
    for (const [i, spec] of specs.entries()) {
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

  // Each case: a spec the API server must reject, the field its message must name, and the words.
  const long = (n: number) => 'a'.repeat(n);
  const invalid: [string, Spec, string, string][] = [
    ['no handler', withProbe({ periodSeconds: 10 }), 'spec.probe', 'exactly one of tcpSocket, httpGet, grpc or exec'],
    [
      'two handlers',
      withProbe({ tcpSocket: { port: 80 }, httpGet: { port: 80 } }),
      'spec.probe',
      'exactly one of tcpSocket, httpGet, grpc or exec',
    ],
    [
      'timeout equal to period',
      withProbe({ tcpSocket: { port: 80 }, timeoutSeconds: 10, periodSeconds: 10 }),
      'spec.probe.timeoutSeconds',
      'timeoutSeconds must be less than periodSeconds',
    ],
    [
      'period 0',
      withProbe({ tcpSocket: { port: 80 }, periodSeconds: 0 }),
      'spec.probe.periodSeconds',
      'should be greater than or equal to 1',
    ],
    [
      // A tarpit holds a shared probe slot for the whole timeout; the CRD caps it at 60 s.
      'timeout above 60 s',
      withProbe({ tcpSocket: { port: 80 }, timeoutSeconds: 61, periodSeconds: 120 }),
      'spec.probe.timeoutSeconds',
      'should be less than or equal to 60',
    ],
    [
      'timeout 0',
      withProbe({ tcpSocket: { port: 80 }, timeoutSeconds: 0 }),
      'spec.probe.timeoutSeconds',
      'should be greater than or equal to 1',
    ],
    [
      'negative failureThreshold',
      withProbe({ tcpSocket: { port: 80 }, failureThreshold: -1 }),
      'spec.probe.failureThreshold',
      'should be greater than or equal to 1',
    ],
    [
      'zero successThreshold',
      withProbe({ tcpSocket: { port: 80 }, successThreshold: 0 }),
      'spec.probe.successThreshold',
      'should be greater than or equal to 1',
    ],
    [
      'negative initialDelaySeconds',
      withProbe({ tcpSocket: { port: 80 }, initialDelaySeconds: -5 }),
      'spec.probe.initialDelaySeconds',
      'should be greater than or equal to 0',
    ],
    [
      'conditionType without prefix',
      { ...valid(), conditionType: 'Ready' },
      'spec.conditionType',
      'must be a qualified name with a DNS subdomain prefix',
    ],
    [
      'conditionType with a bad prefix',
      { ...valid(), conditionType: 'Readygate_dev/x' },
      'spec.conditionType',
      'must be a qualified name',
    ],
    [
      'conditionType name too long',
      { ...valid(), conditionType: `readygate.dev/${long(64)}` },
      'spec.conditionType',
      "the name after '/' at most 63",
    ],
    [
      'missing conditionType',
      { selector: {}, probe: { tcpSocket: { port: 80 } } },
      'spec.conditionType',
      'Required value',
    ],
    [
      'missing selector',
      { conditionType: 'readygate.dev/x', probe: { tcpSocket: { port: 80 } } },
      'spec.selector',
      'Required value',
    ],
    [
      'Host header',
      withHttp({ httpHeaders: [{ name: 'host', value: 'example.com' }] }),
      'spec.probe.httpGet.httpHeaders',
      'a Host header is not allowed',
    ],
    [
      'bad header name',
      withHttp({ httpHeaders: [{ name: 'X Check', value: 'v' }] }),
      'spec.probe.httpGet.httpHeaders[0].name',
      'must be a valid HTTP header name',
    ],
    [
      'too many headers',
      withHttp({ httpHeaders: Array.from({ length: 33 }, (_, i) => ({ name: `X-${i}`, value: 'v' })) }),
      'spec.probe.httpGet.httpHeaders',
      'must have at most 32 items',
    ],
    [
      'oversize path',
      withHttp({ path: `/${long(2048)}` }),
      'spec.probe.httpGet.path',
      'may not be more than 2048 bytes',
    ],
    ['relative path', withHttp({ path: 'ready' }), 'spec.probe.httpGet.path', "must start with '/'"],
    ['unknown scheme', withHttp({ scheme: 'FTP' }), 'spec.probe.httpGet.scheme', 'supported values: "HTTP", "HTTPS"'],
    ['port out of range', withHttp({ port: 70000 }), 'spec.probe.httpGet.port', 'between 1 and 65535'],
    ['port zero', withProbe({ tcpSocket: { port: 0 } }), 'spec.probe.tcpSocket.port', 'between 1 and 65535'],
    [
      'bad port name',
      withProbe({ tcpSocket: { port: 'HTTP_Port' } }),
      'spec.probe.tcpSocket.port',
      'container port name',
    ],
    [
      'port name too long',
      withProbe({ tcpSocket: { port: 'abcdefghijklmnop' } }),
      'spec.probe.tcpSocket.port',
      'at most 15',
    ],
    ['grpc port as a name', withProbe({ grpc: { port: 'grpc' } }), 'spec.probe.grpc.port', 'must be of type integer'],
    [
      'bad success code',
      withHttp({ successCodes: ['2xx'] }),
      'spec.probe.httpGet.successCodes[0]',
      'must be a status code',
    ],
    [
      'inverted success range',
      withHttp({ successCodes: ['399-200'] }),
      'spec.probe.httpGet.successCodes[0]',
      'a range must not end below its start',
    ],
    [
      'oversize bodyRegex',
      withHttp({ bodyRegex: long(1025) }),
      'spec.probe.httpGet.bodyRegex',
      'may not be more than 1024',
    ],
    [
      'tls on plain HTTP',
      withHttp({ tls: { verify: true, caBundle: '-----BEGIN CERTIFICATE-----' } }),
      'spec.probe.httpGet.tls',
      'tls may only be set when scheme is HTTPS',
    ],
    [
      'CA without verify',
      withHttp({ scheme: 'HTTPS', tls: { caSecretRef: { name: 'ca', key: 'ca.crt' } } }),
      'spec.probe.httpGet.tls',
      'only take effect with verify set to true',
    ],
    [
      'caBundle and caSecretRef together',
      withHttp({
        scheme: 'HTTPS',
        tls: { verify: true, caBundle: '-----BEGIN CERTIFICATE-----', caSecretRef: { name: 'ca', key: 'k' } },
      }),
      'spec.probe.httpGet.tls',
      'set at most one of caBundle, caSecretRef and caConfigMapRef',
    ],
    [
      'caConfigMapRef and caSecretRef together',
      withHttp({
        scheme: 'HTTPS',
        tls: { verify: true, caConfigMapRef: { name: 'ca', key: 'k' }, caSecretRef: { name: 'ca', key: 'k' } },
      }),
      'spec.probe.httpGet.tls',
      'set at most one of caBundle, caSecretRef and caConfigMapRef',
    ],
    [
      'caConfigMapRef without verify',
      withHttp({ scheme: 'HTTPS', tls: { caConfigMapRef: { name: 'ca', key: 'ca.crt' } } }),
      'spec.probe.httpGet.tls',
      'only take effect with verify set to true',
    ],
    [
      'caConfigMapRef without a key',
      withHttp({ scheme: 'HTTPS', tls: { verify: true, caConfigMapRef: { name: 'ca' } } }),
      'spec.probe.httpGet.tls.caConfigMapRef.key',
      'Required value',
    ],
    [
      'caBundle that is not PEM',
      withHttp({ scheme: 'HTTPS', tls: { verify: true, caBundle: 'not a cert' } }),
      'spec.probe.httpGet.tls.caBundle',
      'must be PEM-encoded',
    ],
    [
      'empty exec command',
      withProbe({ exec: { command: [] } }),
      'spec.probe.exec.command',
      'should have at least 1 items',
    ],
    [
      'too many exec args',
      withProbe({ exec: { command: Array.from({ length: 65 }, () => 'x') } }),
      'spec.probe.exec.command',
      'must have at most 64 items',
    ],
    ['unknown mode', { ...valid(), mode: 'Sometimes' }, 'spec.mode', 'supported values: "Continuous", "StartupOnly"'],
    [
      'percent above 100',
      { ...valid(), failsafe: { maxUnavailable: '150%' } },
      'spec.failsafe.maxUnavailable',
      'percentage',
    ],
    [
      'percent without %',
      { ...valid(), failsafe: { maxUnavailable: 'half' } },
      'spec.failsafe.maxUnavailable',
      'percentage',
    ],
    [
      'negative maxUnavailable',
      { ...valid(), failsafe: { maxUnavailable: -1 } },
      'spec.failsafe.maxUnavailable',
      'count of pods',
    ],
    [
      'negative failOpenAfterSeconds',
      { ...valid(), failsafe: { failOpenAfterSeconds: -1 } },
      'spec.failsafe.failOpenAfterSeconds',
      'should be greater than or equal to 0',
    ],
    [
      'In without values',
      { ...valid(), selector: { matchExpressions: [{ key: 'app', operator: 'In' }] } },
      'spec.selector.matchExpressions[0]',
      'values must be non-empty for In and NotIn',
    ],
    [
      'unknown selector operator',
      { ...valid(), selector: { matchExpressions: [{ key: 'app', operator: 'Near', values: ['x'] }] } },
      'spec.selector.matchExpressions[0].operator',
      'supported values',
    ],
    [
      'oversize label value',
      { ...valid(), selector: { matchLabels: { app: long(64) } } },
      'spec.selector.matchLabels.app',
      'may not be more than 63 bytes',
    ],
  ];

  it.each(invalid)('rejects %s, naming the field', async (_name, spec, field, words) => {
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

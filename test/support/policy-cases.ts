// ProbePolicy specs the API server must accept or refuse, shared by the CRD test against a real
// kube-apiserver (test/integration/crd.test.ts), the offline validator's unit test and the test
// that both agree (test/integration/validate-agreement.test.ts).

export type Spec = Record<string, unknown>;

export const valid = (): Spec => ({
  conditionType: 'readygate.dev/payments-db',
  selector: { matchLabels: { app: 'payments' } },
  probe: { httpGet: { port: 'http', path: '/ready' } },
});
export const policy = (name: string, spec: Spec) => ({
  apiVersion: 'readygate.dev/v1alpha1',
  kind: 'ProbePolicy',
  metadata: { name },
  spec,
});
export const withProbe = (probe: Record<string, unknown>): Spec => ({ ...valid(), probe });
export const withHttp = (httpGet: Record<string, unknown>): Spec => withProbe({ httpGet: { port: 8080, ...httpGet } });

/** valid() as a create stores it: the CRD's documented defaults applied. */
export const VALID_DEFAULTED: Spec = {
  conditionType: 'readygate.dev/payments-db',
  selector: { matchLabels: { app: 'payments' } },
  mode: 'Continuous',
  dryRun: false,
  failsafe: { maxUnavailable: '50%', failOpenAfterSeconds: 0 },
  injection: 'Enabled',
  probe: {
    httpGet: { port: 'http', path: '/ready', scheme: 'HTTP' },
    initialDelaySeconds: 0,
    periodSeconds: 10,
    timeoutSeconds: 1,
    successThreshold: 1,
    failureThreshold: 3,
  },
};

// Every handler and the optional fields of docs/api.md.
export const VALID_SPECS: Spec[] = [
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
VALID_SPECS.push(withProbe({ tcpSocket: { port: 5432 }, timeoutSeconds: 60, periodSeconds: 61 }));

// Each case: a spec the API server must reject, the field its message must name, and the words.
const long = (n: number) => 'a'.repeat(n);
export const INVALID_SPECS: [string, Spec, string, string][] = [
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
  ['oversize path', withHttp({ path: `/${long(2048)}` }), 'spec.probe.httpGet.path', 'may not be more than 2048 bytes'],
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
    'unknown injection',
    { ...valid(), injection: 'Sometimes' },
    'spec.injection',
    'supported values: "Enabled", "Disabled"',
  ],
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

/**
 * Specs with a field the schema does not know: a create with fieldValidation=Strict (kubectl
 * apply --validate=strict) refuses them, naming the field; a plain create prunes it.
 */
export const UNKNOWN_FIELD_SPECS: [string, Spec, string][] = [
  ['a misspelt successCodes', withHttp({ successCode: ['200'] }), 'spec.probe.httpGet.successCode'],
  ['an unknown spec field', { ...valid(), probes: {} }, 'spec.probes'],
  [
    'an unknown field in a list item',
    withHttp({ httpHeaders: [{ name: 'X-A', value: 'b', vlaue: 'c' }] }),
    'spec.probe.httpGet.httpHeaders[0].vlaue',
  ],
];

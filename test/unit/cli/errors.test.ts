// API and connection failures worded as kubectl words them (src/cli/errors.ts), and where the
// command line finds its kubeconfig (src/kube/config.ts).
import { createServer } from 'node:net';
import { ApiException, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { connectError, kubectlError, serverError } from '../../../src/cli/errors.ts';
import { describeFailure } from '../../../src/cli/main.ts';
import { kubeconfigSource, NO_KUBECONFIG } from '../../../src/kube/config.ts';
import { KubeconfigError } from '../../../src/kube/errors.ts';

const status = (code: number, reason: string, message: string) =>
  JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message, reason, code });

describe('serverError', () => {
  it('quotes the Status: reason and message, nothing of the exception dump', () => {
    const notFound = new ApiException(
      404,
      'Unknown API Status Code!',
      status(404, 'NotFound', 'pods "web-1" not found'),
      {},
    );
    expect(serverError(notFound)).toBe('Error from server (NotFound): pods "web-1" not found');
    const forbidden = new ApiException(
      403,
      'Unknown API Status Code!',
      status(403, 'Forbidden', 'pods is forbidden: User "dev" cannot list resource "pods"'),
      {},
    );
    expect(kubectlError(forbidden)).toBe(
      'Error from server (Forbidden): pods is forbidden: User "dev" cannot list resource "pods"',
    );
  });

  it('takes the Status as an object too (a parsed body)', () => {
    const body = JSON.parse(status(409, 'AlreadyExists', 'pods "a" already exists'));
    expect(serverError(new ApiException(409, 'x', body, {}))).toBe(
      'Error from server (AlreadyExists): pods "a" already exists',
    );
  });

  it('names the reason from the code when the body is not a Status, quoting its start', () => {
    expect(serverError(new ApiException(502, 'x', '<html>Bad Gateway</html>', {}))).toBe(
      'Error from server: the server responded with the status code 502 ("<html>Bad Gateway</html>")',
    );
    expect(serverError(new ApiException(503, 'x', '', {}))).toBe(
      'Error from server (ServiceUnavailable): the server responded with the status code 503',
    );
    const long = serverError(new ApiException(500, 'x', 'y'.repeat(500), {})) ?? '';
    expect(long).toBe(
      `Error from server (InternalError): the server responded with the status code 500 ("${'y'.repeat(120)}...")`,
    );
  });

  it('says a 401 without a Status as kubectl does', () => {
    expect(serverError(new ApiException(401, 'Unauthorized', undefined, {}))).toBe(
      'error: You must be logged in to the server (Unauthorized)',
    );
  });

  it('is not an answer for a timeout or a transport failure', () => {
    expect(serverError(new DOMException('timed out', 'TimeoutError'))).toBeUndefined();
    expect(serverError(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).toBeUndefined();
  });
});

/** An error as fetch throws it: TypeError('fetch failed') with the socket's error as cause. */
const fetchFailed = (cause: object) => new TypeError('fetch failed', { cause });
const sys = (code: string, more: object = {}) => Object.assign(new Error(`${code} something`), { code, ...more });

describe('connectError', () => {
  it('words a refused connection as kubectl does, with the address', () => {
    const err = fetchFailed(sys('ECONNREFUSED', { address: '127.0.0.1', port: 6443 }));
    expect(connectError(err)).toBe(
      'Unable to connect to the server: dial tcp 127.0.0.1:6443: connect: connection refused',
    );
  });

  it('finds the cause in an AggregateError (both address families refused) and in undici errors', () => {
    const both = fetchFailed(
      new AggregateError([sys('ECONNREFUSED', { address: '::1', port: 6443 }), sys('ECONNREFUSED')], ''),
    );
    expect(connectError(both)).toBe('Unable to connect to the server: dial tcp ::1:6443: connect: connection refused');
    expect(connectError(sys('UND_ERR_CONNECT_TIMEOUT'))).toBe('Unable to connect to the server: dial tcp: i/o timeout');
  });

  it('says a missing name, an untrusted certificate and a plain-HTTP port in plain words', () => {
    expect(connectError(fetchFailed(sys('ENOTFOUND', { hostname: 'api.example' })))).toBe(
      'Unable to connect to the server: dial tcp: lookup api.example: no such host',
    );
    expect(connectError(fetchFailed(sys('SELF_SIGNED_CERT_IN_CHAIN')))).toBe(
      'Unable to connect to the server: tls: failed to verify certificate: x509: certificate signed by unknown authority',
    );
    expect(connectError(fetchFailed(sys('ERR_SSL_WRONG_VERSION_NUMBER')))).toMatch(
      /^Unable to connect to the server: the server does not speak TLS/,
    );
    expect(connectError(new DOMException('The operation was aborted due to timeout', 'TimeoutError'))).toBe(
      'Unable to connect to the server: the server did not answer in time (request timed out)',
    );
  });

  it('leaves other errors alone', () => {
    expect(connectError(new Error('boom'))).toBeUndefined();
    expect(connectError(sys('EWHATEVER'))).toBeUndefined();
    expect(connectError(undefined)).toBeUndefined();
    expect(connectError(new ApiException(404, 'x', '', {}))).toBeUndefined();
  });

  it('words what client-node really throws for a closed port', async () => {
    const port = await closedPort();
    const kc = new KubeConfig();
    kc.loadFromClusterAndUser(
      { name: 'c', server: `https://127.0.0.1:${port}`, skipTLSVerify: true },
      { name: 'u', token: 't' },
    );
    const err = await kc
      .makeApiClient(CoreV1Api)
      .readNamespacedPod({ name: 'web-1', namespace: 'default' })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(kubectlError(err)).toBe(
      `Unable to connect to the server: dial tcp 127.0.0.1:${port}: connect: connection refused`,
    );
  });
});

/** A loopback port nothing listens on: bound, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('describeFailure', () => {
  it('prints a missing kubeconfig as kubectl prints its errors', () => {
    expect(describeFailure('readygate explain', new KubeconfigError(NO_KUBECONFIG))).toBe(
      'error: no kubeconfig found: set KUBECONFIG or pass --kubeconfig',
    );
  });

  it('keeps the command name on errors that are neither API nor connection failures', () => {
    expect(describeFailure('readygate release', new Error('something else'))).toBe('readygate release: something else');
    expect(describeFailure('kubectl readygate release', new Error('x'))).toBe('kubectl readygate release: x');
  });
});

describe('kubeconfigSource', () => {
  const none = () => false;
  it('takes --kubeconfig first, then in-cluster, then $KUBECONFIG or ~/.kube/config', () => {
    expect(kubeconfigSource('/k', { KUBERNETES_SERVICE_HOST: '127.0.0.1' }, '/home/u', none)).toBe('file');
    expect(kubeconfigSource(undefined, { KUBERNETES_SERVICE_HOST: '127.0.0.1' }, '/home/u', none)).toBe('in-cluster');
    expect(kubeconfigSource(undefined, { KUBECONFIG: '/k' }, '/home/u', none)).toBe('default');
    expect(kubeconfigSource(undefined, {}, '/home/u', (f) => f === '/home/u/.kube/config')).toBe('default');
  });

  it('finds none without any of them, rather than falling back to localhost:8080', () => {
    expect(kubeconfigSource(undefined, {}, '/home/u', none)).toBeUndefined();
    expect(kubeconfigSource(undefined, { KUBECONFIG: '' }, '', () => true)).toBeUndefined();
  });
});

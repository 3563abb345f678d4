// exec probes through client-node's Exec against a local server speaking the Kubernetes exec
// WebSocket protocol (v5/v4 channel) as the kubelet would; no process is ever spawned locally.
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { Debouncer } from '../../../src/probes/debouncer.ts';
import { createExecProber } from '../../../src/probes/exec.ts';
import { runProbe } from '../../../src/probes/probe.ts';
import { type ExecServer, type ExecServerOptions, startExecServer } from './support/exec-server.ts';
import { closedPort, startRaw } from './support/servers.ts';

function kubeConfig(port: number): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'test', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'operator', token: 'token' }],
    contexts: [{ name: 'test', cluster: 'test', user: 'operator' }],
    currentContext: 'test',
  });
  return kc;
}

describe('exec prober', () => {
  const servers: ExecServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });
  const start = async (options: ExecServerOptions = {}) => {
    const s = await startExecServer(options);
    servers.push(s);
    return s;
  };
  const run = (port: number, command: string[], timeoutMs = 1000) =>
    createExecProber(kubeConfig(port)).probe({ namespace: 'shop', pod: 'web-0', container: 'app', command, timeoutMs });

  it('exit 0 → success, through pods/exec with the container and command', async () => {
    const s = await start();
    const r = await run(s.port, ['true']);
    expect(r).toMatchObject({ outcome: 'success', couldNotLook: false });
    expect(r.message).toBe('exec ["true"] in shop/web-0/app: exit code 0');
    const url = new URL(s.requests[0]!.url, 'http://x');
    expect(url.pathname).toBe('/api/v1/namespaces/shop/pods/web-0/exec');
    expect(url.searchParams.get('container')).toBe('app');
    expect(url.searchParams.getAll('command')).toEqual(['true']);
    expect(s.requests[0]!.protocol).toBe('v5.channel.k8s.io');
  });

  it('output on stdout/stderr does not change the verdict and stays out of the message', async () => {
    const s = await start();
    const r = await run(s.port, ['echo']);
    expect(r.outcome).toBe('success');
    expect(r.message).not.toContain('stdout-payload');
    expect(r.message).not.toContain('a warning');
  });

  it('exit 1 → failure with the exit code', async () => {
    const s = await start();
    const r = await run(s.port, ['exit', '1']);
    expect(r).toMatchObject({ outcome: 'failure', couldNotLook: false });
    expect(r.message).toBe('exec ["exit","1"] in shop/web-0/app: exit code 1');
  });

  it('works over v4.channel.k8s.io too', async () => {
    const s = await start({ protocols: ['v4.channel.k8s.io'] });
    expect((await run(s.port, ['exit', '3'])).message).toMatch(/exit code 3$/);
    expect((await run(s.port, ['true'])).outcome).toBe('success');
    expect(s.requests.map((r) => r.protocol)).toEqual(['v4.channel.k8s.io', 'v4.channel.k8s.io']);
  });

  it('a command that outlives timeoutSeconds → timeout, and the socket is closed', async () => {
    const s = await start();
    const r = await run(s.port, ['sleep'], 300);
    expect(r).toMatchObject({ outcome: 'timeout', couldNotLook: false });
    expect(r.message).toBe('exec ["sleep"] in shop/web-0/app: timeout after 300ms');
  });

  // The command's timeout runs from the session's opening, as the kubelet's runs from the command's
  // start: time the API server takes to open the session is not the command's.
  it('a slow session opening does not eat the command its timeout: success', async () => {
    const s = await start({ openDelayMs: 250 });
    const r = await run(s.port, ['slow', '200'], 300);
    expect(r).toMatchObject({ outcome: 'success', couldNotLook: false });
  });

  it('a command that outlives timeoutSeconds after a slow opening → timeout', async () => {
    const s = await start({ openDelayMs: 200 });
    const r = await run(s.port, ['sleep'], 300);
    expect(r).toMatchObject({ outcome: 'timeout', couldNotLook: false });
  });

  it('a session that does not open within timeoutSeconds → not observed, never a timeout of the command', async () => {
    const s = await start({ openDelayMs: 2_000 });
    const r = await run(s.port, ['true'], 300);
    expect(r).toMatchObject({ outcome: 'unknown', couldNotLook: true });
    expect(r.message).toBe('exec ["true"] in shop/web-0/app: not run: no exec session within 300ms');
  });

  // As the kubelet's exec prober: only an exit code is the command's answer. An InternalError is
  // what kube-apiserver's stream translator or the kubelet sends when they could not run it.
  it('a Failure status without exit code (InternalError) → could not look, naming its reason, not its text', async () => {
    const s = await start();
    const r = await run(s.port, ['missing']);
    expect(r).toMatchObject({ outcome: 'unknown', couldNotLook: true });
    expect(r.message).toBe(
      'exec ["missing"] in shop/web-0/app: not run: exec failed without an exit code (InternalError)',
    );
  });

  it("a status carrying the container's text and escapes → only a numeric exit code is reported", async () => {
    const s = await start();
    const r = await run(s.port, ['hostile']);
    expect(r).toMatchObject({ outcome: 'failure', couldNotLook: false });
    expect(r.message).toBe('exec ["hostile"] in shop/web-0/app: exit code unknown');
  });

  it.each([401, 403, 429, 500, 503])('an upgrade refused with HTTP %i → not observed, could not look', async (code) => {
    const s = await start({ rejectWith: code });
    const r = await run(s.port, ['true']);
    expect(r).toMatchObject({ outcome: 'unknown', couldNotLook: true });
    expect(r.message).toBe(`exec ["true"] in shop/web-0/app: not run: API server answered HTTP ${code}`);
  });

  // kube-apiserver's own Status bodies (pkg/registry/core/pod/strategy.go, streamLocation).
  const status = (code: number, reason: string, message: string, details?: object) =>
    JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message, reason, details, code });
  it.each([
    [404, status(404, 'NotFound', 'pods "web-0" not found', { name: 'web-0', kind: 'pods' }), 'no such pod'],
    [400, status(400, 'BadRequest', 'container app is not valid for pod web-0'), 'no such container in the pod'],
  ])('an upgrade refused with HTTP %i about this pod or container → failure of the target', async (code, body, why) => {
    const s = await start({ rejectWith: code, rejectBody: body });
    const r = await run(s.port, ['true']);
    expect(r).toMatchObject({ outcome: 'failure', couldNotLook: false });
    expect(r.message).toBe(`exec ["true"] in shop/web-0/app: exec refused with HTTP ${code}: ${why}`);
  });

  // A 404 or 400 about anything else is the path, not the target: during a kube-apiserver restart
  // a refusal not about the pod once counted as a failure and flipped a gate.
  it.each([
    [404, ''],
    [404, '404 page not found'],
    [404, status(404, 'NotFound', 'nodes "n1" not found', { name: 'n1', kind: 'nodes' })],
    [404, status(404, 'NotFound', 'pods "web-1" not found', { name: 'web-1', kind: 'pods' })],
    [400, status(400, 'BadRequest', 'pod web-0 does not have a host assigned')],
    [400, status(400, 'BadRequest', 'container other is not valid for pod web-0')],
    [400, `{"reason":"BadRequest","message":"container app is not valid for pod web-0"${' '.repeat(20_000)}}`],
  ])('an upgrade refused with HTTP %i not about this pod (%#) → not observed', async (code, body) => {
    const s = await start({ rejectWith: code, rejectBody: body });
    const r = await run(s.port, ['true']);
    expect(r).toMatchObject({ outcome: 'unknown', couldNotLook: true });
    expect(r.message).toBe(`exec ["true"] in shop/web-0/app: not run: API server answered HTTP ${code}`);
  });

  it('an unreachable API server → not observed, could not look', async () => {
    const port = await closedPort('127.0.0.1');
    const r = await run(port, ['true']);
    expect(r).toMatchObject({ outcome: 'unknown', couldNotLook: true });
    expect(r.message).toBe('exec ["true"] in shop/web-0/app: not run: API server unreachable: connection refused');
  });

  it('an API server that accepts but never answers the upgrade → not observed at the deadline', async () => {
    const silent = await startRaw('127.0.0.1', () => {});
    try {
      const r = await run(silent.port, ['true'], 300);
      expect(r).toMatchObject({ outcome: 'unknown', couldNotLook: true });
      expect(r.message).toBe('exec ["true"] in shop/web-0/app: not run: no exec session within 300ms');
    } finally {
      await silent.close();
    }
  });

  it('a kubeconfig the client refuses (http without skipTLSVerify) → not observed', async () => {
    const s = await start();
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'test', server: `http://127.0.0.1:${s.port}` }],
      users: [{ name: 'operator', token: 'token' }],
      contexts: [{ name: 'test', cluster: 'test', user: 'operator' }],
      currentContext: 'test',
    });
    const r = await createExecProber(kc).probe({
      namespace: 'shop',
      pod: 'web-0',
      container: 'app',
      command: ['true'],
      timeoutMs: 1000,
    });
    expect(r).toMatchObject({ outcome: 'unknown', couldNotLook: true });
    expect(r.message).toBe(
      'exec ["true"] in shop/web-0/app: not run: could not open an exec session (credentials or kubeconfig)',
    );
    expect(s.requests).toHaveLength(0);
  });

  it('a session that closes without an exit status → not observed', async () => {
    const s = await start();
    const r = await run(s.port, ['drop']);
    expect(r).toMatchObject({ outcome: 'unknown', couldNotLook: true });
    expect(r.message).toBe('exec ["drop"] in shop/web-0/app: not run: exec stream closed without exit status');
  });
});

describe('exec results through the debouncer', () => {
  const servers: ExecServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });
  const probeVia = async (options: ExecServerOptions | 'closed', command = ['true']) => {
    let port: number;
    if (options === 'closed') port = await closedPort('127.0.0.1');
    else {
      const s = await startExecServer(options);
      servers.push(s);
      port = s.port;
    }
    return createExecProber(kubeConfig(port)).probe({
      namespace: 'shop',
      pod: 'web-0',
      container: 'app',
      command,
      timeoutMs: 1000,
    });
  };
  const T0 = 1_000_000;
  const gate = () =>
    new Debouncer(
      { probe: { failureThreshold: 3 } },
      { status: 'True', reason: 'ProbeSucceeded', message: 'exec ["true"] in shop/web-0/app: exit code 0' },
      T0,
    );

  it('403, 500, 429 and a refused connection leave a True gate True, with no failure counted', async () => {
    const d = gate();
    const results = [
      await probeVia({ rejectWith: 403 }),
      await probeVia({ rejectWith: 500 }),
      await probeVia({ rejectWith: 429 }),
      await probeVia('closed'),
    ];
    for (const [i, r] of results.entries()) {
      expect(d.observe(r, T0 + i)).toEqual(gate().desired(T0));
    }
    expect(d.snapshot()).toMatchObject({ status: 'True', failures: 0 });
  });

  it('an API outage neither counts nor breaks a run of real failures', async () => {
    const d = gate();
    const exit1 = await probeVia({}, ['exit', '1']);
    const outage = await probeVia({ rejectWith: 503 });
    d.observe(exit1, T0);
    d.observe(exit1, T0);
    for (let i = 0; i < 5; i++) expect(d.observe(outage, T0)?.status).toBe('True');
    expect(d.observe(exit1, T0)).toEqual({
      status: 'False',
      reason: 'ProbeFailed',
      message: 'exec ["exit","1"] in shop/web-0/app: exit code 1 (3/3 failures)',
    });
  });
});

describe('runProbe with exec', () => {
  it('loads the exec prober on first use; two concurrent first probes both answer', async () => {
    const s = await startExecServer();
    try {
      const kc = kubeConfig(s.port);
      const pod = { metadata: { name: 'web-0', namespace: 'shop' }, spec: { containers: [{ name: 'app' }] } };
      const [a, b] = await Promise.all([
        runProbe({ probe: { exec: { command: ['true'] } }, pod, kc }),
        runProbe({ probe: { exec: { command: ['exit', '1'] } }, pod, kc }),
      ]);
      expect(a).toMatchObject({ outcome: 'success', message: 'exec ["true"] in shop/web-0/app: exit code 0' });
      expect(b).toMatchObject({ outcome: 'failure', message: 'exec ["exit","1"] in shop/web-0/app: exit code 1' });
      expect(s.requests.map((r) => new URL(r.url, 'http://x').searchParams.getAll('command'))).toEqual(
        expect.arrayContaining([['true'], ['exit', '1']]),
      );
    } finally {
      await s.close();
    }
  });
});

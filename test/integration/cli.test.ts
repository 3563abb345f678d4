// The readygate CLI as a user runs it: `node src/main.ts <command>`, against the test control
// plane and loopback servers; exit codes and output are the contract.
import { execFile } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, type KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { heldSpec, releasedLease, restLeaseSetClient } from '../../src/kube/lease.ts';
import { bucketLeaseName, SHARD_BUCKET_LABEL } from '../../src/kube/shard-leases.ts';
import { bucketOf } from '../../src/safety/sharding.ts';
import { adminKubeConfig, createNamespace, deleteNamespace, probePolicies } from '../support/kube.ts';
import { APP_ANNOTATION, KubeletFixture } from '../support/kubelet-fixture.ts';
import { eventually } from '../support/wait.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const GATE = 'readygate.dev/cli';

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(ROOT, 'src/main.ts'), ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

let kc: KubeConfig;
let core: CoreV1Api;
let ns: string;
let fixture: KubeletFixture;
let server: Server;
let dir: string;
const kubeconfig = () => inject('controlPlane').kubeconfigPath;

const policyYaml = (path: string, extra = '') => `apiVersion: readygate.dev/v1alpha1
kind: ProbePolicy
metadata: {name: cli}
spec:
  conditionType: ${GATE}
  selector: {matchLabels: {app: cli}}
  probe:
    httpGet: {port: ${path === 'named' ? 'http' : 8089}, path: /ready${extra}}
    timeoutSeconds: 1
`;

beforeAll(async () => {
  kc = adminKubeConfig();
  core = kc.makeApiClient(CoreV1Api);
  ns = await createNamespace(kc, 'cli');
  fixture = new KubeletFixture(kc, { namespaces: [ns], firstIp: '127.70.0.1' });
  await fixture.start();
  dir = inject('controlPlane').dir;
  server = createServer((req, res) => {
    res.writeHead(req.url === '/ready' ? 200 : 503, { connection: 'close' });
    res.end('{"status":"ok"}');
  });
  await new Promise<void>((r) => server.listen(8089, '127.70.1.1', () => r()));
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await fixture.stop();
  await deleteNamespace(kc, ns);
});

describe('readygate check', () => {
  it('passes against a healthy address and prints the condition it would write', async () => {
    const file = join(dir, 'cli-ok.yaml');
    writeFileSync(file, policyYaml('numeric'));
    const r = await cli(['check', '-f', file, '--address', '127.70.1.1']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('PASS HTTP GET http://127.70.1.1:8089/ready: 200');
    expect(r.stdout).toContain(`${GATE}=True reason=ProbeSucceeded`);
  });

  it('fails with exit code 1 and the message the condition would carry', async () => {
    const file = join(dir, 'cli-bad.yaml');
    writeFileSync(file, policyYaml('numeric', 'z'));
    const r = await cli(['check', '-f', file, '--address', '127.70.1.1', '--output', 'json']);
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout) as { passed: boolean; condition: { status: string; message: string } };
    expect(out.passed).toBe(false);
    expect(out.condition.status).toBe('False');
    expect(out.condition.message).toMatch(/^HTTP GET http:\/\/127\.70\.1\.1:8089\/readyz: 503/);
  });

  it('resolves named ports of a real pod', async () => {
    await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'cli-pod', labels: { app: 'cli' }, annotations: { [APP_ANNOTATION]: 'healthy' } },
        spec: {
          readinessGates: [{ conditionType: GATE }],
          containers: [{ name: 'app', image: 'x', ports: [{ name: 'http', containerPort: 8080 }] }],
        },
      },
    });
    await eventually(async () => expect(fixture.ipOf(ns, 'cli-pod')).toBeDefined());
    await eventually(async () =>
      expect((await core.readNamespacedPod({ name: 'cli-pod', namespace: ns })).status?.podIP).toBeDefined(),
    );
    const file = join(dir, 'cli-named.yaml');
    writeFileSync(file, policyYaml('named'));
    const r = await cli(['check', '-f', file, '--pod', 'cli-pod', '-n', ns, '--kubeconfig', kubeconfig()]);
    expect(r.stdout).toContain(`:8080/ready: 200`);
    expect(r.code).toBe(0);
  });

  it('rejects bad usage with exit code 2', async () => {
    expect((await cli(['check'])).code).toBe(2);
    expect((await cli(['check', '-f', '/nonexistent.yaml', '--address', '127.0.0.1'])).code).toBe(2);
    expect((await cli(['check', '-f', join(dir, 'cli-ok.yaml'), '--address', 'not-an-ip'])).stderr).toContain(
      'not an IP address',
    );
    expect((await cli(['frobnicate'])).code).toBe(2);
    expect((await cli(['run', '--workers', 'many'])).stderr).toContain('--workers: must be an integer');
  });
});

describe('readygate explain', () => {
  it('names the policy, status and what blocks Ready', async () => {
    await probePolicies(kc).create(ns, {
      apiVersion: 'readygate.dev/v1alpha1',
      kind: 'ProbePolicy',
      metadata: { name: 'cli' },
      spec: { conditionType: GATE, selector: { matchLabels: { app: 'cli' } }, probe: { tcpSocket: { port: 8080 } } },
    });
    await core.patchNamespacedPodStatus(
      {
        name: 'cli-pod',
        namespace: ns,
        body: {
          status: {
            conditions: [
              { type: GATE, status: 'False', reason: 'ProbeFailed', message: 'TCP 127.70.0.1:8080: refused' },
            ],
          },
        },
      },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
    await eventually(async () => {
      const r = await cli(['explain', 'pod/cli-pod', '-n', ns, '--kubeconfig', kubeconfig()]);
      expect(r.code).toBe(1);
      expect(r.stdout).toContain(`Not Ready: blocked by ${GATE}`);
      expect(r.stdout).toContain('policy:  cli');
      expect(r.stdout).toContain('ProbeFailed — TCP 127.70.0.1:8080: refused');
    });
    const json = await cli(['explain', 'cli-pod', '-n', ns, '--kubeconfig', kubeconfig(), '-o', 'json']);
    const e = JSON.parse(json.stdout) as { ready: boolean; gates: { policy: string; blocking: boolean }[] };
    expect(e.ready).toBe(false);
    expect(e.gates).toMatchObject([{ policy: 'cli', blocking: true }]);
  });

  it("names the replica holding the Lease of the pod's bucket, from --operator-namespace", async () => {
    const explain = async (...more: string[]) =>
      (
        await cli([
          'explain',
          'pod/cli-pod',
          '-n',
          ns,
          '--kubeconfig',
          kubeconfig(),
          '--operator-namespace',
          ns,
          ...more,
        ])
      ).stdout;
    // No bucket Lease yet: the operator does not shard, and explain says nothing about an owner.
    expect(await explain()).not.toContain('owner');
    const uid = (await core.readNamespacedPod({ name: 'cli-pod', namespace: ns })).metadata?.uid ?? '';
    const bucket = bucketOf(uid, 4);
    const leases = restLeaseSetClient(kc, ns);
    const signal = AbortSignal.timeout(10_000);
    const lease = (b: number, holder: string) => ({
      metadata: { name: bucketLeaseName('cli-s4', b), namespace: ns, labels: { [SHARD_BUCKET_LABEL]: 'cli-s4' } },
      spec: heldSpec(holder, 60_000, Date.now()),
    });
    const ours = await leases.create(lease(bucket, 'readygate-cli-a'), signal);
    for (const b of [0, 1, 2, 3].filter((x) => x !== bucket)) await leases.create(lease(b, 'readygate-cli-b'), signal);
    expect(await explain()).toMatch(
      new RegExp(`^ {2}owner: readygate-cli-a \\(bucket ${bucket} of 4, renewed \\d+s ago\\)$`, 'm'),
    );
    const json = JSON.parse(await explain('-o', 'json')) as { owner: object };
    expect(json.owner).toMatchObject({
      state: 'held',
      holder: 'readygate-cli-a',
      bucket,
      buckets: 4,
      leaseSet: 'cli-s4',
    });
    // Handed back (ReleaseOnCancel): nobody holds the bucket while the others are still held.
    await leases.update(releasedLease(ours, Date.now()), signal);
    expect(await explain()).toContain(`  owner: none (no replica holds bucket ${bucket} of 4)`);
  });

  it('says exit code 3 when the cluster cannot be read', async () => {
    const r = await cli(['explain', 'pod/nope', '-n', ns, '--kubeconfig', kubeconfig()]);
    expect(r.code).toBe(3);
    expect(r.stderr).toBe('Error from server (NotFound): pods "nope" not found\n');
  });
});

describe('readygate version', () => {
  it('prints the package version on Node 24', async () => {
    const r = await cli(['version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^readygate \d+\.\d+\.\d+ \(node 24\./);
  });
});

describe('kubectl readygate, the plugin', () => {
  // Built as the package is (npm run build), linked under the plugin's name as npm's and krew's
  // bin are, and found by the real kubectl on PATH.
  let out: string;
  let env: NodeJS.ProcessEnv;
  const run = (file: string, args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(file, args, { timeout: 60_000, env }, (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
    });

  beforeAll(async () => {
    // Under the checkout, so that dist/ resolves its dependencies from its node_modules.
    mkdirSync(join(ROOT, '.tmp'), { recursive: true });
    out = mkdtempSync(join(ROOT, '.tmp', 'plugin-'));
    env = { ...process.env, PATH: [join(out, 'bin'), dirname(process.execPath), process.env.PATH].join(delimiter) };
    const build = await run(join(ROOT, 'node_modules/.bin/tsc'), [
      '-p',
      join(ROOT, 'tsconfig.json'),
      '--outDir',
      join(out, 'dist'),
    ]);
    expect(build, 'tsc').toMatchObject({ code: 0 });
    // dist/ reads the version from the package.json next to it, as in the installed package.
    copyFileSync(join(ROOT, 'package.json'), join(out, 'package.json'));
    chmodSync(join(out, 'dist/main.js'), 0o755);
    mkdirSync(join(out, 'bin'));
    symlinkSync(join(out, 'dist/main.js'), join(out, 'bin/kubectl-readygate'));
  });
  afterAll(() => {
    if (out) rmSync(out, { recursive: true, force: true });
  });

  it('is listed by kubectl plugin list and runs as kubectl readygate', async () => {
    const kubectl = join(inject('controlPlane').binDir, 'kubectl');
    const list = await run(kubectl, ['plugin', 'list']);
    expect(list.stdout).toContain(join(out, 'bin/kubectl-readygate'));
    const version = await run(kubectl, ['readygate', 'version']);
    expect(version).toMatchObject({ code: 0, stderr: '' });
    expect(version.stdout).toMatch(/^readygate \d+\.\d+\.\d+ \(node 24\./);
    const help = await run(kubectl, ['readygate', '--help']);
    expect(help.stdout.startsWith('Usage: kubectl readygate <command> [flags]\n')).toBe(true);
    const explain = await run(kubectl, ['readygate', 'explain', 'pod/cli-pod', '-n', ns, '--kubeconfig', kubeconfig()]);
    expect(explain.stdout.startsWith(`Pod ${ns}/cli-pod: `)).toBe(true);
    const missing = await run(kubectl, ['readygate', 'explain', 'pod/nope', '-n', ns, '--kubeconfig', kubeconfig()]);
    expect(missing).toMatchObject({ code: 3, stderr: 'Error from server (NotFound): pods "nope" not found\n' });
  });
});

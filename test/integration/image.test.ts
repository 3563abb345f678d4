// The operator's own container image, built from the repo's Dockerfile by scripts/build-image.sh
// (cached by content; a cold build takes minutes) and run with podman as the chart runs it:
// UID 65532, read-only root with a /tmp of its own, no capabilities, no new privileges. Against
// the test control plane (host network: it listens on 127.0.0.1) under the chart's RBAC, it must
// win the Lease, report ready and gate a pod of the kubelet fixture, then stop cleanly on SIGTERM.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CoordinationV1Api, CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../support/control-plane.ts';
import { adminKubeConfig, createNamespace, deleteNamespace, probePolicies } from '../support/kube.ts';
import { APP_ANNOTATION, KubeletFixture } from '../support/kubelet-fixture.ts';
import { OPERATOR_NAMESPACE, operatorKubeconfig } from '../support/operator.ts';
import { eventually } from '../support/wait.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);
const GATE = 'readygate.dev/image';
const LEASE = 'readygate'; // the chart's leaderElection.id: its Role allows this Lease only
/** Every container this file starts carries it, so a crashed run's leftovers are found and removed. */
const LABEL = 'readygate.dev/test=image';
const cp = () => inject('controlPlane');
/** What scripts/build-image.sh hashes into the image's tag. */
const IMAGE_INPUTS = [
  'Dockerfile',
  '.dockerignore',
  'package.json',
  'package-lock.json',
  'tsconfig.json',
  'src',
  'crds',
  'scripts/build-image.sh',
  'scripts/lib/image-bases.sh',
];

// crun refuses this machine's cgroups (v1 hybrid) and raising rlimits is refused: runc, limits within ours.
const PODMAN = ['--runtime', 'runc'];
const LIMITS = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'];
/** As the chart's securityContext: UID 65532, all capabilities dropped, no new privileges. */
const UNPRIVILEGED = [
  '--user',
  '65532:65532',
  '--cap-drop=ALL',
  '--security-opt',
  'no-new-privileges',
  '--label',
  LABEL,
  ...LIMITS,
];
/** ...and readOnlyRootFilesystem, with an emptyDir at /tmp. */
const HARDENED = ['--read-only', '--read-only-tmpfs=false', '--tmpfs', '/tmp:rw,size=64m,mode=1777', ...UNPRIVILEGED];

const podman = async (...args: string[]): Promise<string> => {
  try {
    return (await run('podman', [...PODMAN, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 })).stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`podman ${args.join(' ')}: ${e.stderr?.trim() || e.message}`);
  }
};

/** Removes this file's containers, synchronously so that it also works from an 'exit' listener. */
const removeContainers = () => {
  const ids = execFileSync('podman', ['ps', '-aq', '--filter', `label=${LABEL}`], { encoding: 'utf8' }).split(/\s+/);
  if (ids.some(Boolean)) execFileSync('podman', ['rm', '-f', '-t', '0', ...ids.filter(Boolean)], { stdio: 'ignore' });
};

/**
 * Has test/support/reaper.ts SIGKILL the container's process (its host PID) if this process dies
 * first, even by SIGKILL, so that no operator outlives the run; the next run removes the container.
 * The reaper stops when `dir` is removed in afterAll.
 */
const reapWithThisProcess = (pid: number) => {
  const reaperDir = mkdtempSync(join(dir, 'reaper-'));
  writeFileSync(join(reaperDir, 'pids'), String(pid));
  spawn(process.execPath, [join(ROOT, 'test/support/reaper.ts'), String(process.pid), reaperDir], {
    detached: true,
    stdio: 'ignore',
  }).unref();
};

let tag: string;
let archive: string;
let kc: KubeConfig;
let ns: string;
let fixture: KubeletFixture;
let dir: string;

beforeAll(async () => {
  removeContainers();
  process.once('exit', removeContainers);
  // Cold: minutes (Debian root, npm ci, tsc); warm: hashing only. Prints "<tag> <archive>" last.
  const { stdout } = await run('bash', [join(ROOT, 'scripts/build-image.sh')], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  }).catch((err: { stderr?: string; message: string }) => {
    throw new Error(`scripts/build-image.sh failed: ${err.message}\n${err.stderr?.slice(-4000)}`);
  });
  [tag = '', archive = ''] = stdout.trim().split('\n').at(-1)?.split(' ') ?? [];
  expect(tag).toMatch(/^readygate\.local\/readygate:\d+\.\d+\.\d+-[0-9a-f]{12}$/);
  kc = adminKubeConfig();
  ns = await createNamespace(kc, 'image');
  fixture = new KubeletFixture(kc, { namespaces: [ns], firstIp: '127.76.0.1' });
  await fixture.start();
  dir = mkdtempSync(join(cp().dir, 'image-'));
}, 30 * 60_000);

afterAll(async () => {
  removeContainers();
  process.off('exit', removeContainers);
  await fixture?.stop();
  if (ns) await deleteNamespace(kc, ns);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the image', () => {
  it('is a docker-archive of the tag, which containerd can import', async () => {
    const { stdout } = await run('tar', ['-xOf', archive, 'manifest.json'], { encoding: 'utf8' });
    const manifest = JSON.parse(stdout) as { RepoTags: string[]; Layers: string[] }[];
    expect(manifest.map((m) => m.RepoTags)).toEqual([[tag]]);
    expect(manifest[0]?.Layers.length).toBeGreaterThan(0);
  });

  it('prints the version it was built with, and carries it and the revision as labels', async () => {
    const pkg = (await import('../../package.json', { with: { type: 'json' } })).default as { version: string };
    const lock = (await import('../../package-lock.json', { with: { type: 'json' } })).default as {
      packages: Record<string, { version: string }>;
    };
    const node = lock.packages['node_modules/node']?.version;
    const out = await podman('run', '--rm', '--network', 'none', ...HARDENED, tag, 'version');
    expect(out).toBe(`readygate ${pkg.version} (node ${node})\n`);

    const [image] = JSON.parse(await podman('image', 'inspect', tag)) as {
      Config: { User: string; Entrypoint: string[]; Cmd: string[]; WorkingDir: string; Labels: Record<string, string> };
    }[];
    expect(image?.Config).toMatchObject({
      User: '65532:65532',
      Entrypoint: ['/nodejs/bin/node', 'dist/main.js'],
      Cmd: ['run'],
      WorkingDir: '/app',
    });
    const labels = image?.Config.Labels ?? {};
    expect(labels['org.opencontainers.image.version']).toBe(pkg.version);
    const revision = labels['org.opencontainers.image.revision'] ?? '';
    expect(revision).toMatch(/^[0-9a-f]{40}(-dirty)?$/);
    if (!revision.endsWith('-dirty')) {
      // Cached by content: the image may come from an earlier commit, but then one with the same inputs.
      await run('git', ['-C', ROOT, 'diff', '--quiet', revision, '--', ...IMAGE_INPUTS]).catch(() => {
        throw new Error(`the image's inputs differ from those of its revision ${revision}`);
      });
    }
  });

  it('holds Node, its libraries, the CA bundle, zoneinfo and nonroot, and no shell or package manager', async () => {
    const id = (await podman('create', '--label', LABEL, tag)).trim();
    const { stdout } = await run('sh', ['-c', `podman export ${id} | tar -t`], {
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    });
    await podman('rm', id);
    const files = new Set(stdout.split('\n').map((f) => f.replace(/^\.?\//, '')));
    for (const f of [
      'nodejs/bin/node',
      'usr/lib/x86_64-linux-gnu/libc.so.6',
      'usr/lib/x86_64-linux-gnu/libstdc++.so.6',
      'usr/lib/x86_64-linux-gnu/libgcc_s.so.1',
      'etc/ssl/certs/ca-certificates.crt',
      'usr/share/zoneinfo/UTC',
      'app/dist/main.js',
      'app/crds/readygate.dev_probepolicies.yaml',
    ]) {
      expect(files, f).toContain(f);
    }
    const forbidden = [...files].filter((f) =>
      /(^|\/)(s?bin\/)?(sh|bash|dash|busybox|apt|apt-get|dpkg|npm|npx)$/.test(f),
    );
    expect(forbidden).toEqual([]);
    expect([...files].some((f) => f.startsWith('app/node_modules/typescript/'))).toBe(false);
    // On a writable root (no --read-only): the image's own modes keep /app read-only to 65532, and
    // 65532 resolves to nonroot through glibc (nsswitch.conf, /etc/passwd).
    const script = `const fs = require('fs');
      const attempt = (f) => { try { f(); return 'written'; } catch (e) { return e.code; } };
      console.log(JSON.stringify({
        user: require('os').userInfo(),
        dist: attempt(() => fs.appendFileSync('/app/dist/main.js', '')),
        nodeModules: attempt(() => fs.mkdirSync('/app/node_modules/x')),
        tmp: attempt(() => fs.writeFileSync('/tmp/x', 'x')),
      }));`;
    const seen = JSON.parse(
      await podman(
        'run',
        '--rm',
        '--network',
        'none',
        ...UNPRIVILEGED,
        '--entrypoint',
        '/nodejs/bin/node',
        tag,
        '-e',
        script,
      ),
    );
    expect(seen).toEqual({
      user: { uid: 65532, gid: 65532, username: 'nonroot', homedir: '/home/nonroot', shell: '/sbin/nologin' },
      dist: 'EACCES',
      nodeModules: 'EACCES',
      tmp: 'written',
    });
  });
  it("carries Debian's CA bundle without the certificates this machine added (the build only mounts them)", async () => {
    const bundle = await podman(
      'run',
      '--rm',
      '--network',
      'none',
      ...HARDENED,
      '--entrypoint',
      '/nodejs/bin/node',
      tag,
      '-p',
      'require("fs").readFileSync("/etc/ssl/certs/ca-certificates.crt", "utf8")',
    );
    expect(bundle.match(/-----BEGIN CERTIFICATE-----/g)?.length).toBeGreaterThan(100);
    const local = '/usr/local/share/ca-certificates';
    const added = existsSync(local) ? readdirSync(local).filter((f) => f.endsWith('.crt')) : [];
    for (const f of added) {
      const body = readFileSync(join(local, f), 'utf8').replace(/-----[A-Z ]+-----|\s/g, '');
      expect(bundle.replace(/\s/g, ''), f).not.toContain(body);
    }
  });
});

describe('readygate run in the image', () => {
  it('wins the Lease, reports ready, gates a pod, and releases the Lease on SIGTERM', async () => {
    const name = `readygate-image-${randomBytes(3).toString('hex')}`;
    // The chart's ServiceAccount and RBAC; a copy only UID 65532 can read, mounted read-only.
    const kubeconfig = join(dir, 'kubeconfig');
    copyFileSync(await operatorKubeconfig(kc, cp()), kubeconfig);
    chownSync(kubeconfig, 65532, 65532);
    chmodSync(kubeconfig, 0o400);
    const port = await freePort();
    await podman(
      'run',
      '-d',
      '--name',
      name,
      '--network',
      'host',
      ...HARDENED,
      '--env',
      `POD_NAME=${name}`,
      '--volume',
      `${kubeconfig}:/etc/readygate/kubeconfig:ro`,
      tag,
      'run',
      '--kubeconfig',
      '/etc/readygate/kubeconfig',
      '--health-addr',
      `127.0.0.1:${port}`,
      '--namespaces',
      ns,
      '--leader-elect',
      '--leader-election-namespace',
      OPERATOR_NAMESPACE,
      '--leader-election-id',
      LEASE,
      '--lease-duration',
      '6s',
      '--renew-deadline',
      '4s',
      '--retry-period',
      '1s',
    );
    reapWithThisProcess(Number(await podman('inspect', '--format', '{{.State.Pid}}', name)));
    const logs = () => podman('logs', name).catch((err: Error) => err.message);

    const coordination = kc.makeApiClient(CoordinationV1Api);
    const holder = async () =>
      (await coordination.readNamespacedLease({ name: LEASE, namespace: OPERATOR_NAMESPACE })).spec?.holderIdentity;
    try {
      await eventually(async () => expect(await holder()).toBe(name), 60_000);
      await eventually(async () => expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200), 60_000);

      await probePolicies(kc).create(ns, {
        apiVersion: 'readygate.dev/v1alpha1',
        kind: 'ProbePolicy',
        metadata: { name: 'web' },
        spec: {
          conditionType: GATE,
          selector: { matchLabels: { app: 'web' } },
          probe: {
            httpGet: { port: 'http', path: '/ready' },
            periodSeconds: 2,
            timeoutSeconds: 1,
            failureThreshold: 2,
          },
        },
      });
      const pod: V1Pod = {
        metadata: { name: 'web-1', labels: { app: 'web' }, annotations: { [APP_ANNOTATION]: 'failing' } },
        spec: {
          readinessGates: [{ conditionType: GATE }],
          containers: [{ name: 'app', image: 'example/app:1', ports: [{ name: 'http', containerPort: 8080 }] }],
        },
      };
      const core = kc.makeApiClient(CoreV1Api);
      await core.createNamespacedPod({ namespace: ns, body: pod });
      const gate = async () =>
        (await core.readNamespacedPodStatus({ name: 'web-1', namespace: ns })).status?.conditions?.find(
          (c) => c.type === GATE,
        );
      await eventually(async () => expect(await gate()).toMatchObject({ status: 'False', reason: 'ProbeFailed' }));
      fixture.setApp(ns, 'web-1', 'healthy');
      await eventually(async () => expect(await gate()).toMatchObject({ status: 'True', reason: 'ProbeSucceeded' }));

      // Node is PID 1 without an init: its own SIGTERM handler must shut down and release the Lease.
      await podman('stop', '-t', '30', name);
      const [state] = JSON.parse(await podman('inspect', name)) as { State: { ExitCode: number } }[];
      expect(state?.State.ExitCode, await logs()).toBe(0);
      expect(await holder()).toBeFalsy();
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- container log ---\n${(await logs()).slice(-4000)}`);
    }
  });
});

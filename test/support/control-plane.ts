// A real, throwaway Kubernetes control plane on loopback (etcd + kube-apiserver +
// kube-controller-manager), started the way controller-runtime's envtest does. Used by the
// integration tests' global setup, `npm run cluster:up` and `npm run demo`.
// Binaries come from scripts/build-binaries.sh (built from Go modules, cached by version).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { issueCertificate } from './certs.ts';
import { alive } from './watchdog.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface ControlPlane {
  /** Directory holding certs, data, logs and the kubeconfig; removed on stop(). */
  dir: string;
  kubeconfigPath: string;
  /** https://127.0.0.1:<port>, or the bind address's */
  server: string;
  /** Bearer token of the admin user (system:masters); tests of the operator use a ServiceAccount token instead. */
  adminToken: string;
  caPem: string;
  binDir: string;
  /** gitVersion reported by the running kube-apiserver, e.g. v1.37.2. */
  version: string;
  pids: number[];
  /** The running kube-apiserver's pid, for tests that pause (SIGSTOP) or kill it. */
  apiServerPid(): number;
  /**
   * Waits until the current kube-apiserver has exited (the caller killed it), then starts it
   * again with the same flags, port and etcd, and resolves once /readyz answers ok.
   */
  restartApiServer(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Also start kube-controller-manager (Deployments, ReplicaSets, GC, namespaces). Default true. */
  controllerManager?: boolean;
  /** Leave the processes running after this process exits (for `npm run cluster:up`). */
  detached?: boolean;
  /** Where to put the state directory (default: a new temp dir). */
  dir?: string;
  log?: (line: string) => void;
  /**
   * Also audit Lease writes at Request level: their bodies carry holderIdentity and renewTime
   * (the time the holder sent the renew), the basis of its renew deadline. Default false.
   */
  auditLeaseRequests?: boolean;
  /**
   * kube-apiserver feature gates, passed as --feature-gates=Name=true,...; e.g.
   * { ShardedListAndWatch: true } for test/integration/sharded-list.test.ts. Default none.
   */
  featureGates?: Record<string, boolean>;
  /**
   * Serve a real node (test/support/node.ts): the Node authorizer and NodeRestriction for the
   * kubelet's credentials, and kube-apiserver authenticates to the kubelet with a client
   * certificate, verifies its serving certificate and reaches it at its InternalIP. Default false:
   * the integration tests' kubelet fixture serves on loopback with a certificate of its own.
   */
  node?: boolean;
  /**
   * The address kube-apiserver binds, advertises and is reached at (default 127.0.0.1): with a
   * real node, the node IP (node-net.ts), so that pods reach it through the `kubernetes` Service
   * as on a real cluster. It must already be on an interface (create the node's network first).
   */
  bindAddress?: string;
}

/**
 * The service CIDR, and the `kubernetes` Service's ClusterIP (its first address). Virtual: on the
 * real node kube-proxy DNATs it to kube-apiserver on the node IP, an address of this machine on the
 * harness's own bridge; the host drops anything else a pod sends off the bridge (node-net.ts).
 */
export const SERVICE_CIDR = '10.0.0.0/24';
export const KUBERNETES_SERVICE_IP = '10.0.0.1';

/** Builds the binaries if the cache lacks them and returns the directory that holds them. */
export function ensureBinaries(log: (line: string) => void = () => {}): string {
  const started = Date.now();
  const out = execFileSync('bash', [join(ROOT, 'scripts/build-binaries.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const binDir = out.trim().split('\n').pop();
  if (!binDir) throw new Error('scripts/build-binaries.sh printed no bin directory');
  log(`binaries ready in ${binDir} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  return binDir;
}

/**
 * The first port the kernel hands out for outgoing connections and listen(0). A port we pick and
 * pass to a child must lie below it: a port taken from that range (as listen(0) would give) can be
 * claimed by any outgoing connection before the child binds it, which once failed CI with
 * kube-apiserver's "bind: address already in use".
 */
function ephemeralPortStart(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > 11_000) return low;
  } catch {
    // Not Linux: fall through to the IANA dynamic range start.
  }
  return 49_152;
}

const handedOut = new Set<number>();

/**
 * Returns a TCP port on 127.0.0.1, outside the ephemeral range, that was free a moment ago and has
 * not been returned before by this process. Random, so parallel test processes rarely pick alike.
 */
export async function freePort(): Promise<number> {
  const low = 10_000;
  const high = ephemeralPortStart();
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low));
    if (handedOut.has(port)) continue;
    if (await canListen(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port found on 127.0.0.1 in ${low}-${high - 1} after 100 attempts`);
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * Writes a CA, a serving certificate for 127.0.0.1/localhost (plus the bind address and the
 * `kubernetes` Service's ClusterIP, for clients in pods) and a service-account key pair into dir.
 */
function writeCertificates(dir: string, bindAddress: string): void {
  openssl(dir, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key']);
  openssl(dir, [
    'req',
    '-x509',
    '-new',
    '-key',
    'ca.key',
    '-subj',
    '/CN=readygate-test-ca',
    '-days',
    '7',
    '-out',
    'ca.crt',
  ]);
  openssl(dir, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'apiserver.key']);
  openssl(dir, ['req', '-new', '-key', 'apiserver.key', '-subj', '/CN=kube-apiserver', '-out', 'apiserver.csr']);
  writeFileSync(
    join(dir, 'apiserver.ext'),
    `subjectAltName=${[...new Set(['127.0.0.1', bindAddress, KUBERNETES_SERVICE_IP])].map((a) => `IP:${a}`).join(',')},DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n`,
  );
  openssl(
    dir,
    ['x509', '-req', '-in', 'apiserver.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial'].concat([
      '-days',
      '7',
      '-extfile',
      'apiserver.ext',
      '-out',
      'apiserver.crt',
    ]),
  );
  openssl(dir, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'sa.key']);
  openssl(dir, ['ec', '-in', 'sa.key', '-pubout', '-out', 'sa.pub']);
}

/** Writes a kubeconfig for `user` authenticated by a bearer token. */
export function writeKubeconfig(path: string, server: string, caPem: string, user: string, token: string): void {
  const ca = Buffer.from(caPem).toString('base64');
  writeFileSync(
    path,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      `- name: readygate-test`,
      `  cluster: {server: "${server}", certificate-authority-data: "${ca}"}`,
      'users:',
      `- name: ${user}`,
      `  user: {token: "${token}"}`,
      'contexts:',
      `- name: readygate-test`,
      `  context: {cluster: readygate-test, user: ${user}, namespace: default}`,
      'current-context: readygate-test',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls fn until it returns true, the child exits, or the deadline passes (then throws with the log tail). */
export async function waitFor(
  what: string,
  fn: () => Promise<boolean>,
  child: ChildProcess,
  logPath: string,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${what} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${tail(logPath)}`);
    }
    if (await fn().catch(() => false)) return;
    await sleep(200);
  }
  throw new Error(`${what} was not ready within ${timeoutMs / 1000} s:\n${tail(logPath)}`);
}

function tail(path: string, lines = 30): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Sends an HTTPS GET to the API server with the admin token; resolves with status and body. */
async function apiGet(
  server: string,
  caPem: string,
  token: string,
  path: string,
): Promise<{ status: number; body: string }> {
  const https = await import('node:https');
  return new Promise((resolve, reject) => {
    const req = https.get(
      `${server}${path}`,
      { ca: caPem, headers: { authorization: `Bearer ${token}` }, timeout: 5000, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** Kills the processes (SIGTERM, then SIGKILL after graceMs) and waits until they are gone. */
export async function killAll(pids: number[], graceMs = 5000): Promise<void> {
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (pids.some(alive) && Date.now() < deadline) await sleep(50);
  for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  while (pids.some(alive)) await sleep(20);
}

/** `--feature-gates=A=true,B=false`, or nothing when no gate is set; names must look like Go identifiers. */
function featureGateArgs(gates: Record<string, boolean> = {}): string[] {
  const entries = Object.entries(gates);
  for (const [name] of entries) {
    if (!/^[A-Z][A-Za-z0-9]*$/.test(name)) throw new Error(`feature gate ${JSON.stringify(name)} is not a gate name`);
  }
  return entries.length === 0 ? [] : [`--feature-gates=${entries.map(([n, on]) => `${n}=${on}`).join(',')}`];
}

/**
 * Starts etcd, kube-apiserver and (optionally) kube-controller-manager on free loopback ports and
 * resolves once /readyz answers ok; on any failure everything started so far is torn down.
 */
export async function startControlPlane(opts: StartOptions = {}): Promise<ControlPlane> {
  const log = opts.log ?? (() => {});
  const binDir = ensureBinaries(log);
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'readygate-cp-'));
  mkdirSync(dir, { recursive: true });
  const children: ChildProcess[] = [];
  const pidsFile = join(dir, 'pids');
  const record = () => writeFileSync(pidsFile, children.map((c) => c.pid).join('\n'));

  // A detached watchdog removes everything if this process dies without running its cleanup
  // (SIGKILL, a crashed test worker): no processes or temp dirs are left behind.
  if (!opts.detached) {
    const reaper = spawn(process.execPath, [join(ROOT, 'test/support/reaper.ts'), String(process.pid), dir], {
      detached: true,
      stdio: 'ignore',
    });
    reaper.unref();
  }

  const launch = (name: string, args: string[]): { child: ChildProcess; logPath: string } => {
    const logPath = join(dir, `${name}.log`);
    const fd = openSync(logPath, 'a');
    const child = spawn(join(binDir, name), args, { stdio: ['ignore', fd, fd], detached: opts.detached ?? false });
    closeSync(fd);
    if (opts.detached) child.unref();
    children.push(child);
    record();
    return { child, logPath };
  };

  const stop = async () => {
    // SIGKILL at once: the data directory goes next, so a graceful shutdown saves nothing, and
    // kube-apiserver's (then etcd's) takes more than 5 s once it has served watches.
    await killAll(
      children.map((c) => c.pid).filter((p): p is number => p !== undefined),
      0,
    );
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    const bindAddress = opts.bindAddress ?? '127.0.0.1';
    writeCertificates(dir, bindAddress);
    const adminToken = randomBytes(24).toString('hex');
    writeFileSync(join(dir, 'tokens.csv'), `${adminToken},admin,admin-uid,"system:masters"\n`, { mode: 0o600 });

    const [etcdClient, etcdPeer, apiPort] = [await freePort(), await freePort(), await freePort()];
    const etcdUrl = `http://127.0.0.1:${etcdClient}`;
    const etcd = launch('etcd', [
      '--name=readygate-test',
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=readygate-test=http://127.0.0.1:${etcdPeer}`,
      '--unsafe-no-fsync',
      '--log-level=warn',
    ]);
    await waitFor(
      'etcd',
      async () => (await fetch(`${etcdUrl}/health`, { signal: AbortSignal.timeout(2000) })).ok,
      etcd.child,
      etcd.logPath,
      30_000,
    );
    log(`etcd ready on ${etcdUrl}`);

    const server = `https://${bindAddress}:${apiPort}`;
    const apiArgs = [
      `--etcd-servers=${etcdUrl}`,
      `--bind-address=${bindAddress}`,
      `--advertise-address=${bindAddress}`,
      // The 'kubernetes' Service endpoints may not point at loopback; only pods need them, and
      // they are there only with a real node's address.
      `--endpoint-reconciler-type=${bindAddress === '127.0.0.1' ? 'none' : 'lease'}`,
      `--secure-port=${apiPort}`,
      `--cert-dir=${join(dir, 'apiserver-certs')}`,
      `--tls-cert-file=${join(dir, 'apiserver.crt')}`,
      `--tls-private-key-file=${join(dir, 'apiserver.key')}`,
      `--client-ca-file=${join(dir, 'ca.crt')}`,
      `--token-auth-file=${join(dir, 'tokens.csv')}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${join(dir, 'sa.pub')}`,
      `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      ...(opts.node ? nodeArgs(dir) : ['--authorization-mode=RBAC', '--disable-admission-plugins=ServiceAccount']),
      '--allow-privileged=true',
      `--audit-log-path=${join(dir, 'audit.log')}`,
      `--audit-policy-file=${writeAuditPolicy(dir, opts.auditLeaseRequests ?? false)}`,
      '--audit-log-format=json',
      ...featureGateArgs(opts.featureGates),
      '--v=1',
    ];
    const caPem = readFileSync(join(dir, 'ca.crt'), 'utf8');
    const startApiServer = async (timeoutMs: number): Promise<ChildProcess> => {
      const apiserver = launch('kube-apiserver', apiArgs);
      await waitFor(
        'kube-apiserver',
        async () => {
          const r = await apiGet(server, caPem, adminToken, '/readyz');
          return r.status === 200 && r.body.trim() === 'ok';
        },
        apiserver.child,
        apiserver.logPath,
        timeoutMs,
      );
      return apiserver.child;
    };
    let apiserver = await startApiServer(90_000);
    const version = (JSON.parse((await apiGet(server, caPem, adminToken, '/version')).body) as { gitVersion: string })
      .gitVersion;
    log(`kube-apiserver ${version} ready on ${server}`);

    const kubeconfigPath = join(dir, 'kubeconfig');
    writeKubeconfig(kubeconfigPath, server, caPem, 'admin', adminToken);

    if (opts.controllerManager ?? true) {
      // Only the controllers rollouts need: without a kubelet the node lifecycle controller would
      // mark pods NotReady and evict them (docs/testing.md, "Pitfalls the harness handles"). Plus the one
      // that type-checks ValidatingAdmissionPolicies into their status (the chart ships one).
      const kcm = launch('kube-controller-manager', [
        `--kubeconfig=${kubeconfigPath}`,
        // With a real node, also the node lifecycle controller: it lifts the not-ready taint the
        // kubelet registers with, once the node is Ready (else nothing schedules).
        // And the ServiceAccount controllers: pods on a real node get a token (ServiceAccount
        // admission) and the kube-root-ca.crt ConfigMap, as on any cluster.
        `--controllers=deployment,replicaset,garbagecollector,namespace,validatingadmissionpolicy-status-controller${opts.node ? ',nodelifecycle,serviceaccount,root-ca-cert-publisher' : ''}`,
        ...(opts.node ? [`--root-ca-file=${join(dir, 'ca.crt')}`] : []),
        '--leader-elect=false',
        '--bind-address=127.0.0.1',
        '--secure-port=0',
        '--use-service-account-credentials=false',
        '--concurrent-deployment-syncs=5',
        '--concurrent-replicaset-syncs=5',
        '--v=1',
      ]);
      // The controller manager has no health port here (--secure-port 0); it is up once it has
      // logged that its informers synced, or at least not exited within a short grace period.
      await waitFor(
        'kube-controller-manager',
        async () => /Caches are synced|Started controller|Starting controller/.test(tail(kcm.logPath, 400)),
        kcm.child,
        kcm.logPath,
        60_000,
      );
      log('kube-controller-manager started');
    }

    writeFileSync(
      join(dir, 'state.json'),
      JSON.stringify({ server, kubeconfigPath, version, pids: children.map((c) => c.pid) }, null, 2),
    );
    return {
      dir,
      kubeconfigPath,
      server,
      adminToken,
      caPem,
      binDir,
      version,
      pids: children.map((c) => c.pid).filter((p): p is number => p !== undefined),
      apiServerPid: () => {
        if (apiserver.pid === undefined) throw new Error('kube-apiserver has no pid');
        return apiserver.pid;
      },
      restartApiServer: async (timeoutMs = 90_000) => {
        const old = apiserver;
        if (old.exitCode === null && old.signalCode === null) {
          // Waits on its exit event, with a deadline: the caller has just killed it.
          await new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => {
              old.off('exit', onExit);
              reject(new Error(`kube-apiserver (pid ${old.pid}) is still running; kill it before a restart`));
            }, 10_000);
            const onExit = () => {
              clearTimeout(timer);
              resolve();
            };
            old.once('exit', onExit);
          });
        }
        apiserver = await startApiServer(timeoutMs);
        log(`kube-apiserver restarted on ${server}`);
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * kube-apiserver's flags for a real node, as kubeadm sets them: kubelets are authorized by the
 * Node authorizer, and kube-apiserver's own client certificate (system:masters, which the
 * kubelet's webhook authorizer then allows) is presented to the kubelet for exec and logs.
 */
function nodeArgs(dir: string): string[] {
  const client = issueCertificate(dir, dir, {
    name: 'apiserver-kubelet-client',
    commonName: 'kube-apiserver-kubelet-client',
    organizations: ['system:masters'],
    usage: 'client',
  });
  return [
    '--authorization-mode=Node,RBAC',
    // ServiceAccount admission (on by default) mounts the operator pods' tokens.
    '--enable-admission-plugins=NodeRestriction',
    `--kubelet-client-certificate=${client.cert}`,
    `--kubelet-client-key=${client.key}`,
    `--kubelet-certificate-authority=${join(dir, 'ca.crt')}`,
    '--kubelet-preferred-address-types=InternalIP',
  ];
}

/**
 * Audit every write to pods/status at the Metadata level, so tests and benchmarks can count PATCH
 * calls; with leaseBodies, Lease writes at Request level (the first matching rule wins).
 */
function writeAuditPolicy(dir: string, leaseBodies: boolean): string {
  const path = join(dir, 'audit-policy.yaml');
  writeFileSync(
    path,
    [
      'apiVersion: audit.k8s.io/v1',
      'kind: Policy',
      'omitStages: [RequestReceived]',
      'rules:',
      ...(leaseBodies
        ? [
            '- level: Request',
            '  verbs: [update, create, patch]',
            '  resources: [{group: coordination.k8s.io, resources: [leases]}]',
          ]
        : []),
      '- level: Metadata',
      '  verbs: [patch, update, create, delete]',
      '  resources: [{group: "", resources: [pods, pods/status, events]}, {group: readygate.dev}, {group: coordination.k8s.io}]',
      '- level: None',
      '',
    ].join('\n'),
  );
  return path;
}

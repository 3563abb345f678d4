// `readygate explain` names the replica that owns a pod when the operator shards: the pure
// functions that pick the lease set and the bucket's holder, and runExplain against a loopback
// stand-in for the API server (the Leases LIST answered, refused or failing).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiException, type V1Pod } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ProbePolicy } from '../../../src/api/types.ts';
import {
  activeLeaseSet,
  explainPod,
  formatExplanation,
  formatOwner,
  ownerUnknown,
  podOwner,
  runExplain,
  SHARD_BUCKETS_LABEL,
  setBucketCount,
} from '../../../src/cli/explain.ts';
import { EXPLAIN_HELP } from '../../../src/cli/help.ts';
import { printableJson } from '../../../src/cli/terminal.ts';
import type { Lease } from '../../../src/kube/lease.ts';
import { bucketLeaseName, SHARD_BUCKET_LABEL } from '../../../src/kube/shard-leases.ts';
import { bucketOf } from '../../../src/safety/sharding.ts';

const NOW = Date.UTC(2026, 10, 27, 6, 0, 0);
const UID = '3f6f9b52-8a0e-4c1e-9d3a-5b7c2e1f0a11';
const NS = 'readygate-system';

/** A bucket Lease of set `setId`, held by `holder` (empty: released), renewed `agoMs` before NOW. */
function bucketLease(
  setId: string,
  bucket: number,
  holder: string,
  agoMs = 2_000,
  labels: Record<string, string> = {},
): Lease {
  return {
    metadata: {
      name: bucketLeaseName(setId, bucket),
      namespace: NS,
      labels: { [SHARD_BUCKET_LABEL]: setId, ...labels },
    },
    spec: {
      holderIdentity: holder,
      leaseDurationSeconds: 15,
      // A MicroTime, as the API server returns it.
      renewTime: new Date(NOW - agoMs).toISOString().replace('Z', '000Z'),
    },
  };
}

/** Every bucket of a set, held in turn by the replicas given. */
const leaseSet = (setId: string, buckets: number, replicas: string[], agoMs?: number) =>
  Array.from({ length: buckets }, (_, b) => bucketLease(setId, b, replicas[b % replicas.length] ?? '', agoMs));

const REPLICAS = ['readygate-7c9d-a', 'readygate-7c9d-b', 'readygate-7c9d-c'];

describe('which lease set is in use', () => {
  it('reads the bucket count from the label, else from the set id suffix -s<N>', () => {
    expect(setBucketCount('readygate-s16', [bucketLease('readygate-s16', 0, 'a')])).toBe(16);
    expect(setBucketCount('gate-s5-s8', [bucketLease('gate-s5-s8', 0, 'a')])).toBe(8);
    const labelled = bucketLease('odd', 0, 'a', 0, { [SHARD_BUCKETS_LABEL]: '32' });
    expect(setBucketCount('odd', [labelled])).toBe(32);
    // A label out of range or garbled falls back to the suffix; neither: no count.
    const garbled = bucketLease('readygate-s4', 0, 'a', 0, { [SHARD_BUCKETS_LABEL]: '999' });
    expect(setBucketCount('readygate-s4', [garbled])).toBe(4);
    expect(setBucketCount('readygate', [bucketLease('readygate', 0, 'a')])).toBeUndefined();
    expect(setBucketCount('readygate-s0', [bucketLease('readygate-s0', 0, 'a')])).toBeUndefined();
    expect(setBucketCount('readygate-s257', [bucketLease('readygate-s257', 0, 'a')])).toBeUndefined();
  });

  it('takes the set with a live lease; of several, the one renewed last', () => {
    const old = leaseSet('readygate-s8', 8, REPLICAS, 5_000);
    const current = leaseSet('readygate-s16', 16, REPLICAS, 1_000);
    expect(activeLeaseSet([...old, ...current], NOW)?.id).toBe('readygate-s16');
    expect(activeLeaseSet([...current, ...old], NOW)).toMatchObject({ id: 'readygate-s16', buckets: 16 });
    // An expired set (15 s lease renewed 20 s ago) and a released one are not in use.
    const expired = leaseSet('readygate-s16', 16, REPLICAS, 20_000);
    const released = leaseSet('readygate-s8', 8, [''], 1_000);
    expect(activeLeaseSet([...expired, ...released], NOW)).toBeUndefined();
    expect(activeLeaseSet([...expired, ...old], NOW)?.id).toBe('readygate-s8');
    expect(activeLeaseSet([], NOW)).toBeUndefined();
  });
});

describe('the owner of a pod', () => {
  const bucket = bucketOf(UID, 16);
  const holder = REPLICAS[bucket % REPLICAS.length];

  it("is the holder of the pod's bucket Lease", () => {
    const owner = podOwner(UID, leaseSet('readygate-s16', 16, REPLICAS, 3_000), NOW);
    expect(owner).toEqual({
      state: 'held',
      holder,
      bucket,
      buckets: 16,
      leaseSet: 'readygate-s16',
      renewTime: new Date(NOW - 3_000).toISOString().replace('Z', '000Z'),
      renewed: '3s ago',
    });
    expect(formatOwner(owner!)).toBe(`${holder} (bucket ${bucket} of 16, renewed 3s ago)`);
  });

  it("is none when the bucket's Lease is released, expired or missing while the set is in use", () => {
    const leases = leaseSet('readygate-s16', 16, REPLICAS);
    const none = { state: 'none', bucket, buckets: 16, leaseSet: 'readygate-s16' };
    const released = leases.map((l, b) => (b === bucket ? bucketLease('readygate-s16', b, '') : l));
    expect(podOwner(UID, released, NOW)).toEqual(none);
    const expired = leases.map((l, b) => (b === bucket ? bucketLease('readygate-s16', b, 'gone', 16_000) : l));
    expect(podOwner(UID, expired, NOW)).toEqual(none);
    expect(podOwner(UID, leases.toSpliced(bucket, 1), NOW)).toEqual(none);
    expect(formatOwner(podOwner(UID, released, NOW)!)).toBe(`none (no replica holds bucket ${bucket} of 16)`);
  });

  it('is not reported when no lease set is in use (the operator does not shard)', () => {
    expect(podOwner(UID, [], NOW)).toBeUndefined();
    expect(podOwner(UID, leaseSet('readygate-s16', 16, REPLICAS, 60_000), NOW)).toBeUndefined();
  });

  it('is unknown, with the reason, when the Leases may not be listed', () => {
    const body = JSON.stringify({
      kind: 'Status',
      reason: 'Forbidden',
      message:
        'leases.coordination.k8s.io is forbidden: User "dev" cannot list resource "leases" in API group "coordination.k8s.io" in the namespace "readygate-system"',
    });
    const forbidden = ownerUnknown(NS, new ApiException(403, 'Forbidden', body, {}));
    expect(forbidden.state).toBe('unknown');
    expect(formatOwner(forbidden)).toBe(
      'unknown (may not list Leases in namespace readygate-system: Error from server (Forbidden): leases.coordination.k8s.io is forbidden: User "dev" cannot list resource "leases" in API group "coordination.k8s.io" in the namespace "readygate-system")',
    );
    const missing = ownerUnknown(
      'ops',
      new ApiException(404, 'Not Found', '{"message":"the server could not find"}', {}),
    );
    expect(formatOwner(missing)).toBe(
      'unknown (cannot list Leases in namespace ops (check --operator-namespace): Error from server (NotFound): the server could not find)',
    );
  });
});

describe('explainPod with an owner', () => {
  const GATE = 'readygate.dev/db';
  const policy: ProbePolicy = {
    metadata: { name: 'db', namespace: 'shop', uid: 'p', creationTimestamp: '2026-01-01T00:00:00Z' as never },
    spec: { conditionType: GATE, selector: { matchLabels: { app: 'db' } }, probe: { tcpSocket: { port: 1 } } },
  };
  const pod: V1Pod = {
    metadata: { name: 'db-0', namespace: 'shop', uid: UID, labels: { app: 'db' } },
    spec: { containers: [], readinessGates: [{ conditionType: GATE }] },
    status: { podIP: '127.0.0.5', conditions: [{ type: 'ContainersReady', status: 'True' }] },
  };

  it('prints the owner under the summary, and in JSON the same object', () => {
    const owner = podOwner(UID, leaseSet('readygate-s16', 16, REPLICAS, 1_000), NOW)!;
    const e = explainPod(pod, [policy], NOW, owner);
    const lines = formatExplanation(e).split('\n');
    expect(lines[1]).toBe(`  owner: ${formatOwner(owner)}`);
    expect(JSON.parse(printableJson(e)).owner).toEqual(owner);
  });

  it('prints nothing new without an owner', () => {
    const e = explainPod(pod, [policy], NOW);
    expect(e).not.toHaveProperty('owner');
    expect(formatExplanation(e)).not.toContain('owner');
    expect(formatExplanation(e)).toBe(formatExplanation(explainPod(pod, [policy], NOW, undefined)));
  });

  it("escapes a holder's control characters", () => {
    const leases = leaseSet('readygate-s16', 16, ['evil\u001b[2J\nowner: forged']);
    const out = formatExplanation(explainPod(pod, [policy], NOW, podOwner(UID, leases, NOW)));
    expect(out).toContain('owner: evil\\x1b[2J\\x0aowner: forged (bucket');
    expect(out.split('\n').filter((l) => l.includes('owner:'))).toHaveLength(1);
  });

  it('the help names --operator-namespace and its default', () => {
    expect(EXPLAIN_HELP).toContain('--operator-namespace');
    expect(EXPLAIN_HELP).toContain('default readygate-system');
  });
});

describe('runExplain against a stand-in API server', () => {
  type LeaseAnswer = { status: number; body: unknown };
  let server: Server;
  let dir: string;
  let kubeconfig: string;
  let leaseAnswer: LeaseAnswer;
  const requests: string[] = [];

  const apiPod = {
    metadata: { name: 'db-0', namespace: 'shop', uid: UID, labels: { app: 'db' } },
    spec: { containers: [{ name: 'c', image: 'i' }] },
    status: {
      podIP: '127.0.0.5',
      conditions: [
        { type: 'ContainersReady', status: 'True' },
        { type: 'Ready', status: 'True' },
      ],
    },
  };

  beforeAll(async () => {
    server = createServer((req, res) => {
      requests.push(`${req.method} ${req.url}`);
      req.resume();
      const url = new URL(req.url ?? '/', 'http://x');
      const json = (status: number, body: unknown) =>
        res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
      if (url.pathname === '/api/v1/namespaces/shop/pods/db-0') return json(200, apiPod);
      if (url.pathname === '/apis/readygate.dev/v1alpha1/namespaces/shop/probepolicies')
        return json(200, { items: [] });
      if (url.pathname.endsWith('/leases')) return json(leaseAnswer.status, leaseAnswer.body);
      return json(404, { kind: 'Status', message: 'not here' });
    });
    const port = await new Promise<number>((resolve) =>
      server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
    );
    dir = mkdtempSync(join(tmpdir(), 'readygate-explain-'));
    kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 't', cluster: { server: `http://127.0.0.1:${port}`, 'insecure-skip-tls-verify': true } }],
        users: [{ name: 'u', user: { token: 'token' } }],
        contexts: [{ name: 't', context: { cluster: 't', user: 'u' } }],
        'current-context': 't',
      }),
    );
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(() => {
    requests.length = 0;
    vi.restoreAllMocks();
  });

  /** Runs `readygate explain` with args and returns its exit code and what it wrote to stdout. */
  async function explain(args: string[]): Promise<{ code: number; stdout: string }> {
    let stdout = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      stdout += String(chunk);
      return true;
    });
    const code = await runExplain(['pod/db-0', '-n', 'shop', '--kubeconfig', kubeconfig, ...args]);
    vi.restoreAllMocks();
    return { code, stdout };
  }

  it('lists the bucket Leases by label in the operator namespace and names the holder', async () => {
    // Renewed a second ago by the real clock, so that the Lease is live when the command looks.
    const renewTime = new Date(Date.now() - 1_000).toISOString();
    const items = leaseSet('readygate-s16', 16, REPLICAS).map((l) => ({ ...l, spec: { ...l.spec, renewTime } }));
    leaseAnswer = { status: 200, body: { items } };
    const bucket = bucketOf(UID, 16);
    const r = await explain(['--operator-namespace', 'ops']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      new RegExp(`^ {2}owner: ${REPLICAS[bucket % 3]} \\(bucket ${bucket} of 16, renewed [12]s ago\\)$`, 'm'),
    );
    expect(requests).toContain(
      `GET /apis/coordination.k8s.io/v1/namespaces/ops/leases?labelSelector=${encodeURIComponent(SHARD_BUCKET_LABEL)}`,
    );
    const json = JSON.parse((await explain(['-o', 'json'])).stdout);
    expect(json.owner).toMatchObject({ state: 'held', holder: REPLICAS[bucket % 3], bucket, buckets: 16 });
    // In JSON the renewal is the instant (RFC 3339), not "1s ago".
    expect(json.owner.renewed).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$/);
    expect(Date.parse(json.owner.renewed)).toBe(Date.parse(renewTime));
    expect(requests.some((q) => q.startsWith(`GET /apis/coordination.k8s.io/v1/namespaces/${NS}/leases?`))).toBe(true);
  });

  it('a 403 on the LIST prints owner: unknown and the command still answers', async () => {
    leaseAnswer = { status: 403, body: { kind: 'Status', code: 403, message: 'leases is forbidden' } };
    const r = await explain([]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      'owner: unknown (may not list Leases in namespace readygate-system: Error from server (Forbidden): leases is forbidden)',
    );
    const json = JSON.parse((await explain(['-o', 'json'])).stdout);
    expect(json.owner).toEqual({
      state: 'unknown',
      reason: 'may not list Leases in namespace readygate-system: Error from server (Forbidden): leases is forbidden',
    });
  });

  it('no bucket Leases: nothing about an owner', async () => {
    leaseAnswer = { status: 200, body: { items: [] } };
    const r = await explain([]);
    expect(r.stdout).not.toContain('owner');
    expect(JSON.parse((await explain(['-o', 'json'])).stdout)).not.toHaveProperty('owner');
  });

  it('another error on the LIST fails the command, as any API error does', async () => {
    leaseAnswer = { status: 500, body: { kind: 'Status', code: 500, message: 'etcd is down' } };
    await expect(explain([])).rejects.toThrow(/500/);
  });

  it('refuses an --operator-namespace that is not a namespace name', async () => {
    await expect(explain(['--operator-namespace', 'Bad_NS'])).rejects.toThrow(
      '--operator-namespace must be a namespace name, got "Bad_NS"',
    );
  });
});

// KEP-5866 sharded list/watch (alpha in 1.36, feature gate ShardedListAndWatch), tried on the test
// API server (docs/sharding.md, §5 risk 3): does `shardSelector` over our buckets' ranges return
// exactly the pods bucketOf puts in them, does the list say it was sharded (metadata.shardInfo),
// what does a shard's list weigh next to the full one, and does a watch see only its shard. This
// file starts its own control plane with the gate on; the shared one (gate off) shows what an
// operator sees on a cluster without it.
import https from 'node:https';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { bucketOf, shardRange, shardSelector } from '../../src/safety/sharding.ts';
import { type ControlPlane, startControlPlane } from '../support/control-plane.ts';
import { eventually } from '../support/wait.ts';

const PODS = 2000;
const BUCKETS = 4;

interface Target {
  server: string;
  caPem: string;
  adminToken: string;
}

interface PodList {
  metadata: { resourceVersion: string; shardInfo?: { selector: string } };
  items: { metadata: { name: string; uid: string } }[];
}

/** One request to the API server: status and raw body (its size is what a LIST costs to ship). */
function request(t: Target, method: string, path: string, body?: unknown): Promise<{ status: number; body: Buffer }> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const url = new URL(path, t.server);
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method,
        ca: t.caPem,
        headers: {
          authorization: `Bearer ${t.adminToken}`,
          accept: 'application/json',
          ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
        },
        timeout: 60_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

async function listPods(t: Target, namespace: string, selector?: string): Promise<{ list: PodList; bytes: number }> {
  const query = selector === undefined ? '' : `?shardSelector=${encodeURIComponent(selector)}`;
  const r = await request(t, 'GET', `/api/v1/namespaces/${namespace}/pods${query}`);
  if (r.status !== 200) throw new Error(`LIST pods: ${r.status} ${r.body.toString()}`);
  return { list: JSON.parse(r.body.toString()) as PodList, bytes: r.body.length };
}

const podBody = (name: string) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, labels: { app: 'sharded-list' } },
  spec: { nodeName: 'no-node', containers: [{ name: 'app', image: 'sharded-list/app:1' }] },
});

async function createPod(t: Target, namespace: string, name: string): Promise<string> {
  const r = await request(t, 'POST', `/api/v1/namespaces/${namespace}/pods`, podBody(name));
  if (r.status !== 201) throw new Error(`POST pod ${name}: ${r.status} ${r.body.toString()}`);
  return (JSON.parse(r.body.toString()) as { metadata: { uid: string } }).metadata.uid;
}

/** Creates pods `${prefix}0..count-1`, 16 requests in flight; returns name → UID. */
async function createPods(t: Target, namespace: string, prefix: string, count: number): Promise<Map<string, string>> {
  const uids = new Map<string, string>();
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < count; i = next++)
      uids.set(`${prefix}${i}`, await createPod(t, namespace, `${prefix}${i}`));
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  return uids;
}

/** A WATCH of pods from `resourceVersion` with a shard selector; collects the names it is told were ADDED. */
function watchPods(t: Target, namespace: string, resourceVersion: string, selector: string) {
  const added: string[] = [];
  const query = `?watch=true&resourceVersion=${resourceVersion}&shardSelector=${encodeURIComponent(selector)}`;
  const req = https.request(new URL(`/api/v1/namespaces/${namespace}/pods${query}`, t.server), {
    ca: t.caPem,
    headers: { authorization: `Bearer ${t.adminToken}`, accept: 'application/json' },
  });
  let status = 0;
  req.on('response', (res) => {
    status = res.statusCode ?? 0;
    let buffered = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buffered += chunk;
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const event = JSON.parse(buffered.slice(0, nl)) as { type: string; object: { metadata: { name: string } } };
        buffered = buffered.slice(nl + 1);
        if (event.type === 'ADDED') added.push(event.object.metadata.name);
      }
    });
    res.on('error', () => {}); // ended by stop()
  });
  req.on('error', () => {}); // ended by stop()
  req.end();
  return { added, status: () => status, stop: () => req.destroy() };
}

let cp: ControlPlane;
let gated: Target;
const namespace = 'sharded-list';
let uids: Map<string, string>;

beforeAll(async () => {
  cp = await startControlPlane({
    controllerManager: false,
    featureGates: { ShardedListAndWatch: true },
    log: (line) => console.log(`[sharded list] ${line}`),
  });
  gated = cp;
  const ns = await request(gated, 'POST', '/api/v1/namespaces', { metadata: { name: namespace } });
  expect(ns.status).toBe(201);
  const started = performance.now();
  uids = await createPods(gated, namespace, 'pod-', PODS);
  console.log(`[sharded list] ${PODS} pods created in ${((performance.now() - started) / 1000).toFixed(1)} s`);
});

afterAll(async () => {
  await cp?.stop();
});

describe('ShardedListAndWatch on the test API server (gate on)', () => {
  it('lists each pod in exactly the shard bucketOf puts it in, and says so in shardInfo', async () => {
    const full = await listPods(gated, namespace);
    expect(full.list.items).toHaveLength(PODS);
    expect(full.list.metadata.shardInfo).toBeUndefined();
    const seen = new Map<string, number>();
    const sizes: string[] = [];
    for (let b = 0; b < BUCKETS; b++) {
      const selector = shardSelector([b], BUCKETS);
      const shard = await listPods(gated, namespace, selector);
      expect(shard.list.metadata.shardInfo).toEqual({ selector });
      for (const pod of shard.list.items) {
        expect(
          seen.has(pod.metadata.name),
          `${pod.metadata.name} in shards ${seen.get(pod.metadata.name)} and ${b}`,
        ).toBe(false);
        seen.set(pod.metadata.name, b);
        expect(bucketOf(pod.metadata.uid, BUCKETS)).toBe(b);
      }
      sizes.push(
        `shard ${b}: ${shard.list.items.length} pods, ${shard.bytes} B (${((100 * shard.bytes) / full.bytes).toFixed(1)} %)`,
      );
    }
    expect(seen.size).toBe(PODS);
    for (const [name, uid] of uids) expect(seen.get(name)).toBe(bucketOf(uid, BUCKETS));
    console.log(`[sharded list] full list: ${PODS} pods, ${full.bytes} B; ${sizes.join('; ')}`);
  });

  it('pages a shard as the operator’s lists do (limit and continue), shardInfo on every page', async () => {
    const b = 2;
    const selector = shardSelector([b], BUCKETS);
    const names: string[] = [];
    let next = '';
    let pages = 0;
    for (; pages < 100; pages++) {
      const query = `limit=100&shardSelector=${encodeURIComponent(selector)}${next ? `&continue=${encodeURIComponent(next)}` : ''}`;
      const r = await request(gated, 'GET', `/api/v1/namespaces/${namespace}/pods?${query}`);
      expect(r.status).toBe(200);
      const page = JSON.parse(r.body.toString()) as PodList & { metadata: { continue?: string } };
      expect(page.metadata.shardInfo).toEqual({ selector });
      names.push(...page.items.map((p) => p.metadata.name));
      next = page.metadata.continue ?? '';
      if (next === '') break;
    }
    const expected = [...uids].filter(([, uid]) => bucketOf(uid, BUCKETS) === b).map(([name]) => name);
    expect(names.sort()).toEqual(expected.sort());
    console.log(`[sharded list] shard ${b} in ${pages + 1} pages of limit 100: ${names.length} pods`);
  });

  it('takes a merged selector of several ranges (||) and returns their union', async () => {
    const selector = shardSelector([0, 1, 3], BUCKETS);
    expect(selector.split(' || ')).toHaveLength(2);
    const { list } = await listPods(gated, namespace, selector);
    expect(list.metadata.shardInfo).toEqual({ selector });
    const expected = [...uids].filter(([, uid]) => bucketOf(uid, BUCKETS) !== 2).map(([name]) => name);
    expect(list.items.map((p) => p.metadata.name).sort()).toEqual(expected.sort());
  });

  it('refuses bounds not spelled with 16 hex digits', async () => {
    const r = await request(
      gated,
      'GET',
      `/api/v1/namespaces/${namespace}/pods?shardSelector=${encodeURIComponent("shardRange(object.metadata.uid, '0x0', '0x8000000000000000')")}`,
    );
    console.log(`[sharded list] selector with '0x0': ${r.status} ${r.body.toString().slice(0, 300)}`);
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.body.toString()).toMatch(/16-digit hex/);
  });

  it('watches only its shard: new pods of other buckets are not sent', async () => {
    const b = 1;
    const { list } = await listPods(gated, namespace, shardSelector([b], BUCKETS));
    const watch = watchPods(gated, namespace, list.metadata.resourceVersion, shardSelector([b], BUCKETS));
    try {
      const fresh = await createPods(gated, namespace, 'late-', 80);
      // Events come in resourceVersion order: once a marker created after all of them (and in
      // shard b) is seen, every earlier event of the shard has been sent.
      let marker = '';
      for (let i = 0; i < 64 && marker === ''; i++) {
        const uid = await createPod(gated, namespace, `marker-${i}`);
        if (bucketOf(uid, BUCKETS) === b) marker = `marker-${i}`;
        else fresh.set(`marker-${i}`, uid);
      }
      expect(marker).not.toBe('');
      await eventually(() => expect(watch.added).toContain(marker), 30_000);
      expect(watch.status()).toBe(200);
      const expected = [...fresh].filter(([, uid]) => bucketOf(uid, BUCKETS) === b).map(([name]) => name);
      expect(expected.length).toBeGreaterThan(0);
      expect(watch.added.filter((n) => n !== marker).sort()).toEqual(expected.sort());
      console.log(
        `[sharded list] watch of shard ${b}: ${watch.added.length} ADDED of ${fresh.size + 1} pods created (${expected.length} + the marker in its range ${JSON.stringify(shardRange(b, BUCKETS))})`,
      );
    } finally {
      watch.stop();
    }
  });
});

describe('the shared control plane (gate off)', () => {
  it('ignores shardSelector: the full list comes back with no shardInfo', async () => {
    const shared = inject('controlPlane');
    const name = `sharded-off-${process.pid}`;
    const ns = await request(shared, 'POST', '/api/v1/namespaces', { metadata: { name } });
    expect(ns.status).toBe(201);
    try {
      const made = await createPods(shared, name, 'pod-', 20);
      const { list } = await listPods(shared, name, shardSelector([0], BUCKETS));
      expect(list.metadata.shardInfo).toBeUndefined();
      expect(list.items.map((p) => p.metadata.name).sort()).toEqual([...made.keys()].sort());
    } finally {
      await request(shared, 'DELETE', `/api/v1/namespaces/${name}`);
    }
  });
});

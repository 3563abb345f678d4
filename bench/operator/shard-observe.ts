// What the sharding bench reads besides the replicas' /metrics: who holds each bucket Lease (a
// LIST by label, as `readygate explain` does), and the operator's pod writes and Lease writes in
// the audit log.
// The audit log is streamed line by line: at 50,000 pods and more, two start-ups, a clear and the
// Lease renewals make it several hundred MB, past what one string can hold, so test/support/audit.ts
// (which joins the files into one) cannot read it.
import { createReadStream, existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { AuditEvent } from '../../test/support/audit.ts';
import type { Api } from './api.ts';

/** The label bucket Leases carry, valued with their set id (src/kube/shard-leases.ts SHARD_BUCKET_LABEL). */
const BUCKET_LABEL = 'readygate.dev/shard-bucket';

export interface LeaseView {
  name: string;
  holder: string | null;
  /** renewTime (or acquireTime) in ms since the epoch; null if neither is set. */
  renewedAt: number | null;
  durationSeconds: number | null;
}

interface LeaseObject {
  metadata: { name: string };
  spec?: { holderIdentity?: string; renewTime?: string; acquireTime?: string; leaseDurationSeconds?: number };
}

/** The bucket Leases of the set `setId` (e.g. readygate-s16) in the operator's namespace. */
export async function bucketLeases(api: Api, namespace: string, setId: string): Promise<LeaseView[]> {
  const selector = encodeURIComponent(`${BUCKET_LABEL}=${setId}`);
  const list = await api.request<{ items: LeaseObject[] }>(
    'GET',
    `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases?labelSelector=${selector}`,
  );
  return list.items.map((l) => {
    const at = l.spec?.renewTime ?? l.spec?.acquireTime;
    return {
      name: l.metadata.name,
      holder: l.spec?.holderIdentity || null,
      renewedAt: at ? Date.parse(at) : null,
      durationSeconds: l.spec?.leaseDurationSeconds ?? null,
    };
  });
}

/**
 * Bucket → holder, for the buckets of `setId` whose Lease is held and not expired at `nowMs` (and,
 * given `among`, held by one of those identities). Pure.
 */
export function heldBuckets(
  leases: LeaseView[],
  setId: string,
  buckets: number,
  nowMs: number,
  among?: ReadonlySet<string>,
): Map<number, string> {
  const prefix = `${setId}-bucket-`;
  const out = new Map<number, string>();
  for (const l of leases) {
    if (!l.name.startsWith(prefix)) continue;
    const digits = l.name.slice(prefix.length);
    if (!/^(0|[1-9]\d*)$/.test(digits) || Number(digits) >= buckets) continue;
    if (l.holder === null || l.renewedAt === null || l.durationSeconds === null) continue;
    if (l.renewedAt + l.durationSeconds * 1000 <= nowMs) continue;
    if (among && !among.has(l.holder)) continue;
    out.set(Number(digits), l.holder);
  }
  return out;
}

/** Buckets held per identity. Pure. */
export function bucketsPerHolder(held: Map<number, string>): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const [b, holder] of [...held].sort((x, y) => x[0] - y[0])) out.set(holder, [...(out.get(holder) ?? []), b]);
  return out;
}

/** Whether one audit event is `username`'s PATCH of pods/status in `namespace`. Pure. */
export function isPodStatusPatch(e: AuditEvent, username: string, namespace: string): boolean {
  return (
    e.stage === 'ResponseComplete' &&
    e.user.username === username &&
    e.verb === 'patch' &&
    e.objectRef?.resource === 'pods' &&
    e.objectRef.subresource === 'status' &&
    e.objectRef.namespace === namespace
  );
}

/**
 * Every event of the audit files in dir (the rotated audit-<time>.log files, then audit.log) whose
 * line passes `keep`, a cheap test before the JSON is parsed, handed to `take` in order.
 */
async function scanAudit(dir: string, keep: (line: string) => boolean, take: (e: AuditEvent) => void): Promise<void> {
  const files = readdirSync(dir)
    .filter((f) => /^audit-.+\.log$/.test(f))
    .sort();
  // audit.log is missing only if the API server never wrote.
  if (existsSync(path.join(dir, 'audit.log'))) files.push('audit.log');
  for (const file of files) {
    const lines = createInterface({
      input: createReadStream(path.join(dir, file)),
      crlfDelay: Number.POSITIVE_INFINITY,
    });
    for await (const line of lines) {
      if (!keep(line)) continue;
      let e: AuditEvent;
      try {
        e = JSON.parse(line) as AuditEvent;
      } catch {
        continue; // the last line of audit.log, while the API server is still writing it
      }
      take(e);
    }
  }
}

/**
 * When (ms since the epoch, as the API server received them) `username` PATCHed pods/status in
 * `namespace`, from every audit file in dir.
 */
export async function podStatusPatchTimes(dir: string, username: string, namespace: string): Promise<number[]> {
  const times: number[] = [];
  const needle = `"namespace":"${namespace}"`;
  await scanAudit(
    dir,
    // Most lines are other users' pod writes or Lease renewals: skip them before parsing.
    (line) => line.includes('"subresource":"status"') && line.includes(needle),
    (e) => {
      if (isPodStatusPatch(e, username, namespace)) times.push(Date.parse(e.requestReceivedTimestamp));
    },
  );
  return times.sort((a, b) => a - b);
}

/**
 * A write of a held Lease, as a control plane that audits Lease bodies logs it (auditLeaseRequests):
 * the body's renewTime is when the holder sent it (src/kube/lease.ts heldSpec), so the audit
 * event splits its latency into the way to the API server and the time the API server took.
 */
export interface LeaseWrite {
  holder: string;
  /** ms since the epoch: sent by the holder, received by the API server, answered. */
  sentAt: number;
  receivedAt: number;
  doneAt: number;
  code: number;
}

/** The held-Lease write of one audit event, if it is one. Pure. */
export function leaseWriteOf(e: AuditEvent): LeaseWrite | undefined {
  const spec = e.requestObject?.spec;
  if (e.stage !== 'ResponseComplete' || e.objectRef?.resource !== 'leases') return undefined;
  if (!spec?.holderIdentity || !spec.renewTime || !e.stageTimestamp) return undefined;
  return {
    holder: spec.holderIdentity,
    sentAt: Date.parse(spec.renewTime),
    receivedAt: Date.parse(e.requestReceivedTimestamp),
    doneAt: Date.parse(e.stageTimestamp),
    code: e.responseStatus?.code ?? 0,
  };
}

/** Every held-Lease write in the audit files of dir, in the order the API server answered them. */
export async function leaseWrites(dir: string): Promise<LeaseWrite[]> {
  const out: LeaseWrite[] = [];
  await scanAudit(
    dir,
    (line) => line.includes('"resource":"leases"') && line.includes('"holderIdentity"'),
    (e) => {
      const w = leaseWriteOf(e);
      if (w) out.push(w);
    },
  );
  return out;
}

/** Percentiles of a list of milliseconds, in seconds. */
export interface Spread {
  p50: number;
  p99: number;
  max: number;
}

/** Lease writes sent in a window, their latency split where the audit log can split it. */
export interface LeaseWriteFigures {
  writes: number;
  /** Answers other than 2xx, by code (409: a race lost; 504: the API server timed out). */
  failed: Record<string, number>;
  /** Sent → received by the API server: the holder's event loop, its connection, and the way there. */
  toServer: Spread | null;
  /** Received → answered: the API server and etcd. */
  inServer: Spread | null;
  /** Writes answered later than the renew deadline after they were sent: a renew too late to count. */
  pastDeadline: number;
}

/** The figures of the writes sent in [from, to) (ms since the epoch). Pure. */
export function leaseWriteFigures(
  writes: LeaseWrite[],
  from: number,
  to: number,
  deadlineMs: number,
): LeaseWriteFigures {
  const inWindow = writes.filter((w) => w.sentAt >= from && w.sentAt < to);
  const failed: Record<string, number> = {};
  for (const w of inWindow) if (w.code < 200 || w.code > 299) failed[w.code] = (failed[w.code] ?? 0) + 1;
  return {
    writes: inWindow.length,
    failed,
    toServer: spread(inWindow.map((w) => w.receivedAt - w.sentAt)),
    inServer: spread(inWindow.map((w) => w.doneAt - w.receivedAt)),
    pastDeadline: inWindow.filter((w) => w.doneAt - w.sentAt > deadlineMs).length,
  };
}

/** p50, p99 and max of ms, in seconds to the ms (nearest-rank percentiles); null when empty. Pure. */
export function spread(ms: number[]): Spread | null {
  if (ms.length === 0) return null;
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]! / 1000;
  return { p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1]! / 1000 };
}

/** How many of the sorted times fall in [from, to). Pure. */
export function countBetween(times: number[], from: number, to: number): number {
  let k = 0;
  for (const t of times) if (t >= from && t < to) k++;
  return k;
}

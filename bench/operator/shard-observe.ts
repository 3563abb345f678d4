// What the sharding bench reads besides the replicas' /metrics: who holds each bucket Lease (a
// LIST by label, as `readygate explain` does) and the operator's pod writes in the audit log.
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
 * When (ms since the epoch, as the API server received them) `username` PATCHed pods/status in
 * `namespace`, from every audit file in dir (the rotated audit-<time>.log files, then audit.log).
 */
export async function podStatusPatchTimes(dir: string, username: string, namespace: string): Promise<number[]> {
  const files = readdirSync(dir)
    .filter((f) => /^audit-.+\.log$/.test(f))
    .sort();
  // audit.log is missing only if the API server never wrote.
  if (existsSync(path.join(dir, 'audit.log'))) files.push('audit.log');
  const times: number[] = [];
  const needle = `"namespace":"${namespace}"`;
  for (const file of files) {
    const lines = createInterface({
      input: createReadStream(path.join(dir, file)),
      crlfDelay: Number.POSITIVE_INFINITY,
    });
    for await (const line of lines) {
      // Most lines are other users' pod writes or Lease renewals: skip them before parsing.
      if (!line.includes('"subresource":"status"') || !line.includes(needle)) continue;
      let e: AuditEvent;
      try {
        e = JSON.parse(line) as AuditEvent;
      } catch {
        continue; // the last line of audit.log, while the API server is still writing it
      }
      if (isPodStatusPatch(e, username, namespace)) times.push(Date.parse(e.requestReceivedTimestamp));
    }
  }
  return times.sort((a, b) => a - b);
}

/** How many of the sorted times fall in [from, to). Pure. */
export function countBetween(times: number[], from: number, to: number): number {
  let k = 0;
  for (const t of times) if (t >= from && t < to) k++;
  return k;
}

// Counts API writes from the kube-apiserver's audit log (the control plane audits writes to pods,
// pods/status, events, ProbePolicies and Leases at Metadata level). An absolute count that no
// machine noise can move: how the tests prove "no writes in steady state" and "zero flips".
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface AuditEvent {
  auditID: string;
  stage: string;
  verb: string;
  /** extra carries the token's credential id (`JTI=<jti>`), which tells apart processes sharing a ServiceAccount. */
  user: { username: string; extra?: Record<string, string[]> };
  sourceIPs?: string[];
  objectRef?: { resource?: string; subresource?: string; namespace?: string; name?: string; apiGroup?: string };
  responseStatus?: { code?: number };
  requestReceivedTimestamp: string;
  /** When the stage was reached: for ResponseComplete, when the answer was sent. */
  stageTimestamp?: string;
  /** The request body: logged for Lease writes only, by a control plane started with auditLeaseRequests. */
  requestObject?: { spec?: { holderIdentity?: string; renewTime?: string } };
}

/**
 * Reads the completed audit events of the control plane in dir, oldest first: the files
 * kube-apiserver rotated away at 100 MB (audit-<time>.log, a 50,000-pod start-up fills several)
 * and then audit.log, so positions stay valid across a rotation.
 */
export function readAudit(dir: string): AuditEvent[] {
  let rotated: string[] = [];
  try {
    rotated = readdirSync(dir)
      .filter((f) => /^audit-.+\.log$/.test(f))
      .sort();
  } catch {
    return [];
  }
  let text = '';
  for (const file of [...rotated, 'audit.log']) {
    try {
      text += readFileSync(join(dir, file), 'utf8');
    } catch {
      // audit.log does not exist before the first request.
    }
  }
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditEvent)
    .filter((e) => e.stage === 'ResponseComplete');
}

/** The operator's PATCH calls on pods/status in namespace, optionally only after an audit position. */
export function podStatusPatches(dir: string, username: string, namespace: string, after = 0): AuditEvent[] {
  return readAudit(dir)
    .slice(after)
    .filter(
      (e) =>
        e.user.username === username &&
        e.verb === 'patch' &&
        e.objectRef?.resource === 'pods' &&
        e.objectRef.subresource === 'status' &&
        e.objectRef.namespace === namespace,
    );
}

/** The operator's writes of any kind (patch/update/create/delete) in namespace after a position. */
export function writesBy(dir: string, username: string, namespace: string, after = 0): AuditEvent[] {
  return readAudit(dir)
    .slice(after)
    .filter((e) => e.user.username === username && e.objectRef?.namespace === namespace && e.verb !== 'get');
}

/** The current end of the audit log, to count only what happens after it. */
export const auditPosition = (dir: string) => readAudit(dir).length;

/** Every request of `username` from one source address after a position (a proxied client's). */
export function requestsFrom(dir: string, username: string, sourceIP: string, after = 0): AuditEvent[] {
  return readAudit(dir)
    .slice(after)
    .filter((e) => e.user.username === username && (e.sourceIPs ?? []).includes(sourceIP));
}

/** When the API server received the request. */
export const receivedAt = (e: { requestReceivedTimestamp: string }) => new Date(e.requestReceivedTimestamp).getTime();

/** A process in the audit log: its identity (a Lease holder) and the JTI of its token (its credential id). */
export interface AuditedProcess {
  name: string;
  jti: string;
}

/** A successful write of a Lease: who it names as holder ('' for a hand-back), and when. */
export interface LeaseWrite {
  holder: string;
  /** The renewTime the writer put in: when it sent the write, the start of its renew deadline. */
  sentAt: number;
  receivedAt: number;
}

/**
 * Successful creates and updates of the Lease `name` in `namespace`, oldest first, each with the
 * time its writer sent it (needs a control plane started with auditLeaseRequests, which logs
 * Lease bodies).
 */
export function renews(dir: string, namespace: string, name: string, events = readAudit(dir)): LeaseWrite[] {
  return events
    .filter(
      (e) =>
        e.objectRef?.resource === 'leases' &&
        e.objectRef.namespace === namespace &&
        e.objectRef.name === name &&
        (e.verb === 'update' || e.verb === 'create') &&
        (e.responseStatus?.code === 200 || e.responseStatus?.code === 201),
    )
    .map((e) => ({
      holder: e.requestObject?.spec?.holderIdentity ?? '',
      sentAt: new Date(e.requestObject?.spec?.renewTime ?? 0).getTime(),
      receivedAt: receivedAt(e),
    }));
}

/** Whether the process made the request: its token's JTI is the request's credential id. */
export const madeBy = (p: AuditedProcess) => (e: AuditEvent) =>
  (e.user.extra?.['authentication.kubernetes.io/credential-id'] ?? []).includes(`JTI=${p.jti}`);

/** Every write (not a read: only writes are audited) the process made, after an audit position. */
export function writesOf(dir: string, p: AuditedProcess, after = 0, events = readAudit(dir)): AuditEvent[] {
  return events.slice(after).filter(madeBy(p));
}

export interface LateWriteRules {
  namespace: string;
  renewDeadlineMs: number;
  /** The Lease whose renew deadline must cover the write; undefined: the write is not checked (a Lease's own). */
  leaseOf: (e: AuditEvent) => string | undefined;
}

/**
 * Writes of the processes after a position that the API server received outside every renew
 * deadline of theirs on the Lease that guards them: [renewTime, renewTime + renew deadline] of
 * one of their renews of it, cut short where the Lease next changed hands (a hand-back, or
 * another holder's write). A process may write only while it holds that Lease, so each entry is
 * a write it made without it.
 */
export function lateWrites(dir: string, processes: AuditedProcess[], after: number, rules: LateWriteRules): string[] {
  const events = readAudit(dir);
  const windowsOf = new Map<string, { holder: string; from: number; until: number }[]>();
  const windows = (lease: string) => {
    const known = windowsOf.get(lease);
    if (known) return known;
    const all = renews(dir, rules.namespace, lease, events);
    const computed = all.map((x, i) => {
      const handedOn = all.slice(i + 1).find((y) => y.holder !== x.holder && y.receivedAt >= x.receivedAt);
      return {
        holder: x.holder,
        from: x.sentAt,
        until: Math.min(x.sentAt + rules.renewDeadlineMs, handedOn?.receivedAt ?? Number.POSITIVE_INFINITY),
      };
    });
    windowsOf.set(lease, computed);
    return computed;
  };
  return processes.flatMap((p) =>
    writesOf(dir, p, after, events).flatMap((e) => {
      const lease = rules.leaseOf(e);
      if (lease === undefined) return [];
      const at = receivedAt(e);
      if (windows(lease).some((w) => w.holder === p.name && w.from <= at && at <= w.until)) return [];
      return [`${p.name} ${e.verb} ${e.objectRef?.resource}/${e.objectRef?.subresource ?? ''} ${e.objectRef?.name}`];
    }),
  );
}

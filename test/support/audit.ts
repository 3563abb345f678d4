// Counts API writes from the kube-apiserver's audit log (the control plane audits writes to pods,
// pods/status, events, ProbePolicies and Leases at Metadata level). An absolute count that no
// machine noise can move: how the tests prove "no writes in steady state" and "zero flips".
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface AuditEvent {
  auditID: string;
  stage: string;
  verb: string;
  user: { username: string };
  sourceIPs?: string[];
  objectRef?: { resource?: string; subresource?: string; namespace?: string; name?: string; apiGroup?: string };
  responseStatus?: { code?: number };
  requestReceivedTimestamp: string;
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

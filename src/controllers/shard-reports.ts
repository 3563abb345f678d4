// What each sharded replica tells the status writer (docs/sharding.md, decisions 3 and 4): the
// policies whose flips its failsafe holds, and its probe period stretch. It rides as an
// annotation on the replica's member Lease, renewed every retry period anyway, so it costs no
// extra API call; it carries no counts, so it changes only when a hold or the stretch does. The
// leader merges the live members' reports into each policy's Degraded condition.
import type { FailsafeStatus } from './probe-manager.ts';

/** The member Lease annotation holding a replica's report. */
export const SHARD_REPORT_ANNOTATION = 'readygate.dev/shard-report';
/** At most this many held policies per report (Failsafe first); `more` says how many were left out. */
export const MAX_REPORTED_POLICIES = 200;
/** A report longer than this is cut to its stretch and `more`: Lease annotations share 256 KiB. */
export const MAX_REPORT_BYTES = 16 * 1024;

type HoldReason = FailsafeStatus['reason'];

export interface ShardReport {
  stretch: number;
  /** Policy key ("namespace/name") → why its flips are held on that replica. */
  held: Record<string, HoldReason>;
  /** Held policies left out of `held` to keep the report small. */
  more?: number;
}

/** Pure: a replica's report as the annotation's text, bounded in entries and bytes. */
export function encodeReport(stretch: number, held: ReadonlyMap<string, HoldReason>): string {
  const order = [...held].sort(([ka, a], [kb, b]) => (a === b ? (ka < kb ? -1 : 1) : a === 'Failsafe' ? -1 : 1));
  const kept = order.slice(0, MAX_REPORTED_POLICIES);
  const report: ShardReport = { stretch, held: Object.fromEntries(kept) };
  if (order.length > kept.length) report.more = order.length - kept.length;
  const text = JSON.stringify(report);
  return text.length <= MAX_REPORT_BYTES ? text : JSON.stringify({ stretch, held: {}, more: order.length });
}

/** Pure: a report read back from an annotation; anything malformed reads as no report. */
export function decodeReport(text: string | undefined): ShardReport | undefined {
  if (text === undefined || text.length > MAX_REPORT_BYTES) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const v = value as Partial<ShardReport> | null;
  if (typeof v !== 'object' || v === null || typeof v.stretch !== 'number' || !(v.stretch >= 1)) return undefined;
  const held: Record<string, HoldReason> = {};
  for (const [key, reason] of Object.entries(typeof v.held === 'object' && v.held !== null ? v.held : {})) {
    if (reason === 'Failsafe' || reason === 'CouldNotLook') held[key] = reason;
  }
  return { stretch: v.stretch, held, ...(typeof v.more === 'number' ? { more: v.more } : {}) };
}

/** What the other live replicas report, merged: the status writer's view of its peers. */
export class PeerReports {
  #reports = new Map<string, ShardReport>();

  /**
   * Replaces the view with the live members' reports (its own identity excluded); returns the
   * policy keys whose merged hold changed, and whether the largest stretch did.
   */
  update(self: string, members: readonly { identity: string; report: ShardReport | undefined }[]) {
    const before = this.#reports;
    this.#reports = new Map();
    for (const m of members) if (m.identity !== self && m.report) this.#reports.set(m.identity, m.report);
    const keys = new Set<string>();
    for (const r of [...before.values(), ...this.#reports.values()]) for (const k of Object.keys(r.held)) keys.add(k);
    const changed = [...keys].filter((k) => holdOf(before, k)?.reason !== holdOf(this.#reports, k)?.reason);
    return { changed, stretchChanged: maxStretch(before) !== maxStretch(this.#reports) };
  }

  /** Why another replica holds this policy's flips, if one does: Failsafe before CouldNotLook. */
  failsafe(policyKey: string): FailsafeStatus | undefined {
    return holdOf(this.#reports, policyKey);
  }

  /** The largest probe period stretch another replica reports (1: none stretched). */
  stretch(): number {
    return maxStretch(this.#reports);
  }
}

function holdOf(reports: ReadonlyMap<string, ShardReport>, key: string): FailsafeStatus | undefined {
  const holders = [...reports].filter(([, r]) => r.held[key] !== undefined);
  const failsafe = holders.filter(([, r]) => r.held[key] === 'Failsafe').map(([id]) => id);
  const blind = holders.filter(([, r]) => r.held[key] === 'CouldNotLook').map(([id]) => id);
  if (failsafe.length > 0) {
    return {
      reason: 'Failsafe',
      message: `replica ${failsafe.sort().join(', ')} holds flips to False: more of this policy's pods would flip than failsafe.maxUnavailable allows`,
    };
  }
  if (blind.length > 0) {
    return {
      reason: 'CouldNotLook',
      message: `replica ${blind.sort().join(', ')} holds flips to False: it could not look at most of its targets (the fault may be its own)`,
    };
  }
  return undefined;
}

function maxStretch(reports: ReadonlyMap<string, ShardReport>): number {
  let max = 1;
  for (const r of reports.values()) max = Math.max(max, r.stretch);
  return max;
}

// What the status writer cannot see when each replica caches only its buckets' pods
// (docs/sharding.md, step 3): every replica counts its share of each policy's pods on its own
// policy passes, and publishes the counts on its member Lease, which it renews every retry
// period anyway (no extra API call). The status writer adds the live peers' counts to its own
// for matchedPods, readyPods, ungatedPods, failingPods and conflicts; every replica adds their
// targets and recent flips to its failsafe's global budget (src/safety/failsafe.ts). With a full
// pod cache (the API server ignores shardSelector) nothing is published: every cache is global.
import type { V1Pod } from '@kubernetes/client-node';

/** The member Lease annotation holding a replica's counts. */
export const SHARE_COUNTS_ANNOTATION = 'readygate.dev/shard-counts';
/** Counts longer than this drop failing names, then flips, then policies (`cut` says how many). */
export const MAX_SHARE_COUNTS_BYTES = 64 * 1024;
/** Recent flips reported per policy: enough to exhaust any failsafe budget up to this many pods. */
export const MAX_REPORTED_FLIPS = 64;
/** failingPods lists at most this many names (the CRD's maxItems), so no share reports more. */
export const MAX_FAILING_NAMES = 20;

/** One replica's share of one policy. */
export interface ShareCounts {
  matched: number;
  ready: number;
  ungated: number;
  /** Matched pods this replica probes (the failsafe's budget counts them). */
  targets: number;
  /** The first failing pod names of the share, sorted; at most MAX_FAILING_NAMES. */
  failing: string[];
  /** Older policies that own the condition on some pods of the share. */
  conflictedWith: string[];
  /** When readygate flipped the share's pods to False, recent ones only, newest first. */
  flips: number[];
}

/** Condition reasons that mean a flip to False written by readygate (a previous owner included). */
export const FLIP_REASONS: ReadonlySet<string> = new Set(['ProbeFailed', 'ProbeTimeout']);

/**
 * Pure: the failsafe's sliding window for a policy, a failureThreshold's worth of periods: a mass
 * outage reaches every target's threshold within it, whatever the phase spread.
 */
export function failsafeWindowMs(spec: { probe: { periodSeconds?: number; failureThreshold?: number } }): number {
  return (spec.probe.periodSeconds ?? 10) * 1000 * Math.max(1, spec.probe.failureThreshold ?? 3);
}

/** Pure: when readygate flipped this pod's gate to False, if that is what the gate says now. */
export function flipTime(pod: V1Pod, conditionType: string): number | undefined {
  const c = pod.status?.conditions?.find((x) => x.type === conditionType);
  if (c?.status !== 'False' || !FLIP_REASONS.has(c.reason ?? '') || !c.lastTransitionTime) return undefined;
  const at = new Date(c.lastTransitionTime).getTime();
  return Number.isFinite(at) ? at : undefined;
}

/** Pure: the flips to False on `pods` since `since`, newest first, at most MAX_REPORTED_FLIPS. */
export function recentFlipTimes(pods: readonly V1Pod[], conditionType: string, since: number): number[] {
  const out: number[] = [];
  for (const pod of pods) {
    const at = flipTime(pod, conditionType);
    if (at !== undefined && at >= since) out.push(at);
  }
  return out.sort((a, b) => b - a).slice(0, MAX_REPORTED_FLIPS);
}

/** Pure: merges sorted name lists, keeping the first `cap` (desiredStatus' failingPods order). */
export function firstNames(lists: readonly (readonly string[])[], cap = MAX_FAILING_NAMES): string[] {
  return [...new Set(lists.flat())].sort().slice(0, cap);
}

/** Pure: the sum of shares (the peers' part of a policy); undefined when there is none. */
export function sumShares(shares: readonly ShareCounts[]): ShareCounts | undefined {
  if (shares.length === 0) return undefined;
  return {
    matched: shares.reduce((n, s) => n + s.matched, 0),
    ready: shares.reduce((n, s) => n + s.ready, 0),
    ungated: shares.reduce((n, s) => n + s.ungated, 0),
    targets: shares.reduce((n, s) => n + s.targets, 0),
    failing: firstNames(shares.map((s) => s.failing)),
    conflictedWith: [...new Set(shares.flatMap((s) => s.conflictedWith))].sort(),
    flips: shares.flatMap((s) => s.flips).sort((a, b) => b - a),
  };
}

type Wire = { m: number; r: number; u: number; t: number; f?: string[]; c?: string[]; x?: number[] };

/**
 * Pure: a replica's counts as the annotation's text, bounded in bytes (see MAX_SHARE_COUNTS_BYTES).
 * `covered`: the buckets whose pods every count was taken over, when they all were over the same
 * ones; left out while they differ (a bucket moved since some policy's last pass) or when
 * policies were cut, so that the status writer does not add up counts of unknown extent.
 */
export function encodeShareCounts(counts: ReadonlyMap<string, ShareCounts>, covered?: readonly number[]): string {
  const b = covered === undefined ? {} : { b: [...covered].sort((x, y) => x - y) };
  const entries = [...counts].sort(([a], [b]) => (a < b ? -1 : 1));
  const wire = (s: ShareCounts, names: boolean, flips: boolean): Wire => ({
    m: s.matched,
    r: s.ready,
    u: s.ungated,
    t: s.targets,
    ...(names && s.failing.length > 0 ? { f: s.failing } : {}),
    ...(s.conflictedWith.length > 0 ? { c: s.conflictedWith } : {}),
    ...(flips && s.flips.length > 0 ? { x: s.flips } : {}),
  });
  for (const [names, flips] of [
    [true, true],
    [false, true],
    [false, false],
  ] as const) {
    const text = JSON.stringify({ ...b, p: Object.fromEntries(entries.map(([k, s]) => [k, wire(s, names, flips)])) });
    if (text.length <= MAX_SHARE_COUNTS_BYTES) return text;
  }
  // Still too long: keep the policies that fit, in key order, and say how many were cut.
  const kept: [string, Wire][] = [];
  let bytes = 32;
  for (const [k, s] of entries) {
    const w = wire(s, false, false);
    bytes += JSON.stringify([k, w]).length;
    if (bytes > MAX_SHARE_COUNTS_BYTES) break;
    kept.push([k, w]);
  }
  return JSON.stringify({ p: Object.fromEntries(kept), cut: entries.length - kept.length });
}

const count = (v: unknown) => (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : undefined);
const strings = (v: unknown) => (Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : []);
const times = (v: unknown) => (Array.isArray(v) ? v.filter((t): t is number => Number.isFinite(t)) : []);

/** A replica's counts as read back: per policy, how many were cut, and the buckets they cover (if one set). */
export interface DecodedShareCounts {
  counts: Map<string, ShareCounts>;
  cut: number;
  covered?: number[];
}

/** Pure: counts read back from an annotation; malformed entries are skipped, malformed text is none. */
export function decodeShareCounts(text: string | undefined): DecodedShareCounts | undefined {
  if (text === undefined || text.length > MAX_SHARE_COUNTS_BYTES) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const v = value as { p?: unknown; cut?: unknown; b?: unknown } | null;
  if (typeof v !== 'object' || v === null || typeof v.p !== 'object' || v.p === null) return undefined;
  const counts = new Map<string, ShareCounts>();
  for (const [key, raw] of Object.entries(v.p as Record<string, Partial<Wire>>)) {
    const [m, r, u, t] = [count(raw?.m), count(raw?.r), count(raw?.u), count(raw?.t)];
    if (m === undefined || r === undefined || u === undefined || t === undefined || r > m) continue;
    counts.set(key, {
      matched: m,
      ready: r,
      ungated: u,
      targets: t,
      failing: strings(raw.f).slice(0, MAX_FAILING_NAMES),
      conflictedWith: strings(raw.c),
      flips: times(raw.x).slice(0, MAX_REPORTED_FLIPS),
    });
  }
  const cut = count(v.cut) ?? 0;
  const covered = Array.isArray(v.b) && cut === 0 ? v.b.filter((x) => count(x) !== undefined) : undefined;
  return { counts, cut, ...(covered && { covered }) };
}

/** Pure: whether `parts` cover every bucket of 0..buckets-1 exactly once (the shares add up to the whole). */
export function partitions(parts: readonly (readonly number[])[], buckets: number): boolean {
  const seen = new Set<number>();
  for (const part of parts) {
    for (const b of part) {
      if (!Number.isInteger(b) || b < 0 || b >= buckets || seen.has(b)) return false;
      seen.add(b);
    }
  }
  return seen.size === buckets;
}

/** One peer's counts, and the buckets they cover (undefined: not one known set). */
interface PeerShare {
  counts: Map<string, ShareCounts>;
  covered: number[] | undefined;
}

/** The live peers' counts (its own identity excluded), as read from each LIST of the member Leases. */
export class PeerCounts {
  #peers = new Map<string, PeerShare>();

  /** Replaces the view; returns the policy keys whose peers' part changed (all of them when a coverage did). */
  update(self: string, members: readonly { identity: string; counts: DecodedShareCounts | undefined }[]) {
    const before = this.#peers;
    this.#peers = new Map();
    for (const m of members) {
      if (m.identity !== self && m.counts) {
        this.#peers.set(m.identity, { counts: m.counts.counts, covered: m.counts.covered });
      }
    }
    const keys = new Set<string>();
    for (const c of [...before.values(), ...this.#peers.values()]) for (const k of c.counts.keys()) keys.add(k);
    if (coverageOf(before) !== coverageOf(this.#peers)) return [...keys];
    return [...keys].filter((k) => JSON.stringify(partOf(before, k)) !== JSON.stringify(partOf(this.#peers, k)));
  }

  /** The buckets each peer's counts cover, or undefined when one peer's are not of one known set. */
  covered(): number[][] | undefined {
    const out: number[][] = [];
    for (const p of this.#peers.values()) {
      if (!p.covered) return undefined;
      out.push(p.covered);
    }
    return out;
  }

  /** The peers' part of a policy: its pods in the buckets other replicas hold. */
  elsewhere(policyKey: string): ShareCounts | undefined {
    return partOf(this.#peers, policyKey);
  }

  /** The peers' recent flips of a policy, each with an id stable across reports (the failsafe's foreign flips). */
  flips(policyKey: string): { id: string; at: number }[] {
    const out: { id: string; at: number }[] = [];
    for (const [identity, peer] of this.#peers) {
      // Equal times from one replica are distinct flips: the nth of a time is numbered n.
      const seen = new Map<number, number>();
      for (const at of peer.counts.get(policyKey)?.flips ?? []) {
        const n = seen.get(at) ?? 0;
        seen.set(at, n + 1);
        out.push({ id: `${identity}#${at}#${n}`, at });
      }
    }
    return out;
  }
}

function coverageOf(peers: ReadonlyMap<string, PeerShare>): string {
  return JSON.stringify([...peers].map(([id, p]) => [id, p.covered ?? null]).sort());
}

function partOf(peers: ReadonlyMap<string, PeerShare>, key: string): ShareCounts | undefined {
  const shares: ShareCounts[] = [];
  for (const peer of peers.values()) {
    const s = peer.counts.get(key);
    if (s) shares.push(s);
  }
  return sumShares(shares);
}

/** This replica's counts per policy, and its peers', while each replica caches only its share. */
export interface ShareLedger {
  /** Whether the pod cache holds only this replica's buckets (the counts are a share, not the whole). */
  active(): boolean;
  record(policyKey: string, counts: ShareCounts): void;
  forget(policyKey: string): void;
  /** The peers' part of a policy, summed. */
  elsewhere(policyKey: string): ShareCounts | undefined;
  /** The peers' recent flips of a policy, for the failsafe's global budget. */
  flips(policyKey: string): { id: string; at: number }[];
  /**
   * Whether this replica's share and its peers' cover every bucket exactly once, so that their
   * counts add up to the policy's pods: not while a bucket is unheld, not listed yet, or still
   * counted by its previous holder.
   */
  complete(): boolean;
}

/** The ledger of a sharded replica: its own counts, published on its member Lease, and its peers'. */
export class ShareBook implements ShareLedger {
  /** Per policy, its counts and the buckets covered when they were taken. */
  readonly #own = new Map<string, { counts: ShareCounts; covered: string }>();
  readonly peers = new PeerCounts();
  readonly active: () => boolean;
  readonly #covered: () => number[];
  readonly #buckets: number;

  /** `covered`: the buckets whose pods the cache holds, listed in full, now. */
  constructor(opts: { active: () => boolean; covered: () => number[]; buckets: number }) {
    this.active = opts.active;
    this.#covered = opts.covered;
    this.#buckets = opts.buckets;
  }

  record(policyKey: string, counts: ShareCounts): void {
    this.#own.set(policyKey, { counts, covered: this.#coveredKey() });
  }

  forget(policyKey: string): void {
    this.#own.delete(policyKey);
  }

  elsewhere(policyKey: string): ShareCounts | undefined {
    return this.peers.elsewhere(policyKey);
  }

  flips(policyKey: string): { id: string; at: number }[] {
    return this.peers.flips(policyKey);
  }

  complete(): boolean {
    const peers = this.peers.covered();
    return peers !== undefined && partitions([this.#covered(), ...peers], this.#buckets);
  }

  /** The annotation text to publish, or undefined while the cache holds every pod (nothing to add up). */
  encode(): string | undefined {
    if (!this.active()) return undefined;
    const now = this.#coveredKey();
    const counts = new Map([...this.#own].map(([k, v]) => [k, v.counts]));
    // Counts taken over other buckets than the cache holds now are not published as covering them.
    const current = [...this.#own.values()].every((v) => v.covered === now);
    return encodeShareCounts(counts, current ? this.#covered() : undefined);
  }

  #coveredKey(): string {
    return [...this.#covered()].sort((a, b) => a - b).join(',');
  }
}

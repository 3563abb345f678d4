// Sharding: every replica probes and writes a share of the targets. A pod belongs to one of a
// fixed number of buckets (a hash of its UID), and each bucket is owned through a Lease of its
// own (src/kube/shard-leases.ts), as Knative and Tekton shard their controllers. Argo CD's way,
// a membership list with consistent hashing, was set aside: while replicas come and go, two of
// them can both believe they own a key until their views agree, which Argo CD accepts. Here at
// most one replica may write a pod at any time, so each bucket has a Lease and a Fence
// (src/safety/fencing.ts) of its own: a write to a pod is allowed only while its bucket's lease
// is held, and a bucket changes hands only when released or expired, as the leader lease does.
//
// This module holds the rules, pure: which bucket a pod is in, how many buckets a replica may
// hold (the fair share), and which buckets to acquire or release given who holds what. Every
// replica holds at most its fair share, ceil(buckets / live members), and takes free or expired
// buckets up to it; since members × ceil(buckets / members) ≥ buckets, every bucket is held
// once the membership is stable. The shell lists the leases, plans, and does the I/O.
//
// A bucket is one contiguous range of the 64-bit FNV-1a hash of the UID, the hash the API
// server's alpha sharded list/watch filters on (KEP-5866, feature gate ShardedListAndWatch), so
// the buckets a replica holds can be asked for as a `shardSelector` (docs/sharding.md, §5.3).

/** FNV-1a, 32 bits, over the UTF-8 bytes of `text`. */
export function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    // UIDs and identities are ASCII; anything else is hashed over its UTF-8 bytes.
    if (code > 0x7f) return fnv1a32Bytes(new TextEncoder().encode(text));
    hash = Math.imul(hash ^ code, 0x01000193);
  }
  return hash >>> 0;
}

function fnv1a32Bytes(bytes: Uint8Array): number {
  let hash = 0x811c9dc5;
  for (const byte of bytes) hash = Math.imul(hash ^ byte, 0x01000193);
  return hash >>> 0;
}

/** The most buckets allowed: every held bucket costs a lease renewal each retry period. */
export const MAX_BUCKETS = 256;

/** Throws unless `buckets` is a bucket count this module accepts. */
export function checkBucketCount(buckets: number): void {
  if (!Number.isInteger(buckets) || buckets < 1 || buckets > MAX_BUCKETS) {
    throw new RangeError(`buckets must be an integer from 1 to ${MAX_BUCKETS}, got ${buckets}`);
  }
}

/**
 * FNV-1a, 64 bits, over the UTF-8 bytes of `text`: Go's `hash/fnv` New64a, which the API server
 * applies to the UID string's bytes for `shardRange`. Computed on four 16-bit limbs, since a
 * BigInt step per byte would cost microseconds per UID; the prime is 2^40 + 0x1b3.
 */
export function fnv1a64(text: string): bigint {
  const h = fnv1a64Limbs(text);
  return (BigInt(((h[3]! << 16) | h[2]!) >>> 0) << 32n) | BigInt(((h[1]! << 16) | h[0]!) >>> 0);
}

/** Reused by fnv1a64Limbs: bucketOf runs per pod on every policy pass, so it allocates nothing. */
const LIMBS = new Uint16Array(4);

/** FNV-1a-64 of `text` as four 16-bit limbs, lowest first (a view that the next call overwrites). */
function fnv1a64Limbs(text: string): Uint16Array {
  // 0xcbf29ce484222325, lowest limb first.
  let h0 = 0x2325;
  let h1 = 0x8422;
  let h2 = 0x9ce4;
  let h3 = 0xcbf2;
  // UIDs are ASCII, whose char codes are their bytes; anything else is hashed over its UTF-8.
  const bytes = /[\u0080-\uffff]/.test(text) ? new TextEncoder().encode(text) : undefined;
  const length = bytes ? bytes.length : text.length;
  for (let i = 0; i < length; i++) {
    h0 ^= bytes ? bytes[i]! : text.charCodeAt(i);
    // (h × 0x1b3) + (h << 40), mod 2^64, limb by limb; each partial sum stays below 2^26.
    const t0 = h0 * 0x1b3;
    const t1 = h1 * 0x1b3 + (t0 >>> 16);
    const t2 = h2 * 0x1b3 + (h0 << 8) + (t1 >>> 16);
    const t3 = h3 * 0x1b3 + (h1 << 8) + (t2 >>> 16);
    h0 = t0 & 0xffff;
    h1 = t1 & 0xffff;
    h2 = t2 & 0xffff;
    h3 = t3 & 0xffff;
  }
  LIMBS[0] = h0;
  LIMBS[1] = h1;
  LIMBS[2] = h2;
  LIMBS[3] = h3;
  return LIMBS;
}

const HASH_SPACE = 1n << 64n;

/**
 * The bucket a pod belongs to: floor(fnv1a64(uid) × buckets / 2^64), so that bucket b is the one
 * contiguous hash range `shardRange(b, buckets)`.
 */
export function bucketOf(podUid: string, buckets: number): number {
  checkBucketCount(buckets);
  if (podUid === '') throw new RangeError('a pod UID is needed to pick its bucket');
  // floor(h × buckets / 2^64) is the carry out of the top limb of h × buckets: exact, with
  // every partial product below 2^25 (buckets ≤ 256), and no BigInt (5 µs a call with one).
  const h = fnv1a64Limbs(podUid);
  const c0 = h[0]! * buckets;
  const c1 = h[1]! * buckets + (c0 >>> 16);
  const c2 = h[2]! * buckets + (c1 >>> 16);
  const c3 = h[3]! * buckets + (c2 >>> 16);
  return c3 >>> 16;
}

/** ceil(b × 2^64 / buckets): where bucket b's hash range starts. */
function rangeStart(b: number, buckets: number): bigint {
  const n = BigInt(b) * HASH_SPACE;
  const d = BigInt(buckets);
  return (n + d - 1n) / d;
}

/**
 * The API server's spelling of a bound: `0x` and 16 lowercase hex digits, or `0x10000000000000000`
 * for 2^64. It compares bounds by length and then as text, and refuses any other width
 * (k8s.io/apiserver@v0.37.2 pkg/sharding/parser.go), so '0x0' is an error, not zero.
 */
function hexBound(value: bigint): string {
  return `0x${value.toString(16).padStart(16, '0')}`;
}

/** Bucket b's hash range [start, end), as `shardRange` bounds: start inclusive, end exclusive. */
export function shardRange(b: number, buckets: number): { start: string; end: string } {
  checkBucketCount(buckets);
  checkBucket(b, buckets);
  return { start: hexBound(rangeStart(b, buckets)), end: hexBound(rangeStart(b + 1, buckets)) };
}

function checkBucket(b: number, buckets: number): void {
  if (!Number.isInteger(b) || b < 0 || b >= buckets) throw new RangeError(`bucket ${b} is not in 0..${buckets - 1}`);
}

/**
 * A `shardSelector` list/watch parameter for the pods in `owned` (ShardedListAndWatch): adjacent
 * buckets merge into one `shardRange(object.metadata.uid, …)` term, terms are joined by ` || `,
 * spelled as the API server echoes them back in `metadata.shardInfo.selector`. No buckets is an
 * error: an empty selector would mean every pod.
 */
export function shardSelector(owned: Iterable<number>, buckets: number): string {
  checkBucketCount(buckets);
  const sorted = [...new Set(owned)].sort((a, b) => a - b);
  for (const b of sorted) checkBucket(b, buckets);
  if (sorted.length === 0) throw new RangeError('a shard selector needs at least one bucket; none selects every pod');
  const terms: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    const { start } = shardRange(sorted[i]!, buckets);
    const { end } = shardRange(sorted[j]!, buckets);
    terms.push(`shardRange(object.metadata.uid, '${start}', '${end}')`);
    i = j + 1;
  }
  return terms.join(' || ');
}

/**
 * How long after an acquisition a newly set-up target still counts as taken over. The takeover's
 * targets are set up once the bucket's pods are listed (95–115 s at 150,000 pods, bench/RESULTS.md);
 * a target set up later belongs to a policy created since, and is spread over its period as before.
 */
export const HANDOVER_HORIZON_MS = 5 * 60_000;

/**
 * The earliest time the previous holder of a bucket acquired at `acquiredAtMs` may have stopped
 * probing its pods; undefined once `nowMs` is past HANDOVER_HORIZON_MS after the acquisition.
 * A dead holder's last renewal is seen within a retry period, its Lease runs out a lease
 * duration later, and the next round takes the bucket within another retry period:
 * the takeover bound the tests and benches hold (docs/sharding.md). A slot of a pod's period
 * after this time may have gone unprobed, so the new holder probes that pod at once rather than
 * a period later. Lease calls slower than a retry period can push the loss earlier than this;
 * such a pod then waits for its next slot, as without the rule.
 */
export function handoverSince(
  acquiredAtMs: number,
  nowMs: number,
  leaseDurationMs: number,
  retryPeriodMs: number,
): number | undefined {
  if (nowMs - acquiredAtMs > HANDOVER_HORIZON_MS) return undefined;
  return acquiredAtMs - leaseDurationMs - 2 * retryPeriodMs;
}

/** The most buckets one replica may hold: ceil(buckets / live members), at least one member (itself). */
export function fairShare(buckets: number, liveMembers: number): number {
  checkBucketCount(buckets);
  if (!Number.isInteger(liveMembers) || liveMembers < 0) {
    throw new RangeError(`live members must be a non-negative integer, got ${liveMembers}`);
  }
  return Math.ceil(buckets / Math.max(1, liveMembers));
}

/** Who holds a bucket's or a member's lease, as the planning replica sees it. */
export interface LeaseHolder {
  /** holderIdentity; '' when the lease was released. */
  holder: string;
  /** No renewal observed for a lease duration: the holder is gone. */
  expired: boolean;
}

/**
 * The replicas the fair share is counted over: this one, and each holder of a live member lease
 * that holds no expired bucket lease. A replica whose bucket lease expired has stopped writing
 * it (its fence expired first), so it is gone whatever its member lease says: the others' share
 * grows in the same round its buckets may be taken over, not a round later when its member lease
 * expires too.
 */
export function countLiveMembers(
  self: string,
  members: readonly LeaseHolder[],
  holders: ReadonlyMap<number, LeaseHolder>,
): number {
  return new Set([self, ...liveMemberIdentities(members, holders)]).size;
}

/** The holders of live member leases that hold no expired bucket lease (see countLiveMembers). */
export function liveMemberIdentities(
  members: readonly LeaseHolder[],
  holders: ReadonlyMap<number, LeaseHolder>,
): Set<string> {
  const gone = new Set<string>();
  for (const h of holders.values()) if (h.expired && h.holder !== '') gone.add(h.holder);
  const live = new Set<string>();
  for (const m of members) if (m.holder !== '' && !m.expired && !gone.has(m.holder)) live.add(m.holder);
  return live;
}

export interface BucketPlanInput {
  buckets: number;
  /** The planning replica's identity. */
  self: string;
  /** Replicas whose membership lease is live, the planning replica included. */
  liveMembers: number;
  /** Bucket → its lease's holder; a bucket with no lease is absent. */
  holders: ReadonlyMap<number, LeaseHolder>;
  /** The buckets the planning replica holds now. */
  held: ReadonlySet<number>;
}

export interface BucketPlan {
  /** Buckets to acquire, in the order to try them. */
  acquire: number[];
  /**
   * Buckets to hand back: held ones above the fair share (their writes stopped first), and
   * leases on record as this replica's that it neither holds nor acquires (a release or an
   * acquire whose answer was lost), so that they do not sit there until they expire.
   */
  release: number[];
}

function acquirable(holder: LeaseHolder | undefined, self: string): boolean {
  // A lease on record as ours that we do not count as held (an acquire that landed too late to
  // use, or a renewal that outlived its fence) is ours to renew: no one else can hold it.
  return holder === undefined || holder.holder === '' || holder.expired || holder.holder === self;
}

/**
 * What a replica should acquire and release this round: never more than its fair share (the
 * highest-numbered held buckets go first when over it), and leases on record as its own, then
 * free or expired buckets, up to it, tried from an offset derived from its identity so that
 * replicas starting together do not all race for the same buckets.
 */
export function planBuckets(input: BucketPlanInput): BucketPlan {
  const { buckets, self, held, holders } = input;
  const share = fairShare(buckets, input.liveMembers);
  if (self === '') throw new RangeError('a replica needs an identity to plan its buckets');
  for (const b of held) {
    if (!Number.isInteger(b) || b < 0 || b >= buckets)
      throw new RangeError(`held bucket ${b} is not in 0..${buckets - 1}`);
  }
  const sorted = [...held].sort((a, b) => a - b);
  // Leases on record as its own come first: taking them back moves nothing.
  const start = fnv1a32(self) % buckets;
  const order = Array.from({ length: buckets }, (_, i) => (start + i) % buckets);
  const own = order.filter((b) => holders.get(b)?.holder === self);
  const acquire: number[] = [];
  for (const b of [...own, ...order.filter((b) => holders.get(b)?.holder !== self)]) {
    if (sorted.length + acquire.length >= share) break;
    if (!held.has(b) && acquirable(holders.get(b), self)) acquire.push(b);
  }
  const stray = own.filter((b) => !held.has(b) && !acquire.includes(b)).sort((a, b) => a - b);
  return { acquire, release: [...sorted.slice(share), ...stray] };
}

/**
 * Decision 6 of docs/sharding.md: one lease set writes at a time. A replica acquires buckets
 * only while no bucket Lease of another set (another bucket count) is live, and while the leader
 * Lease is held by a member of its own set or by no one: an unsharded leader (an older version,
 * or sharding being turned on in a rollout) probes every pod, so taking buckets beside it would
 * make two writers. Until this replica has seen who leads, it waits.
 */
export function mayAcquireBuckets(input: {
  otherSets: boolean;
  /** Holder of the leader Lease as last seen: '' when no one holds it, undefined before any sighting. */
  leader: string | undefined;
  /** Identities of this set: its live members and every holder of its bucket Leases, expired or not. */
  members: ReadonlySet<string>;
}): boolean {
  if (input.otherSets || input.leader === undefined) return false;
  return input.leader === '' || input.members.has(input.leader);
}

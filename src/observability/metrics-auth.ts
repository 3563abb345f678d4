// Authenticated /metrics, as controller-runtime's filters.WithAuthenticationAndAuthorization does
// it: the caller's bearer token is checked with a TokenReview, and the user it names must be
// allowed `get` on the non-resource URL /metrics by a SubjectAccessReview. Decisions are cached
// briefly (by a hash of the token, never the token) in a bounded map, so a scrape every 15 s
// costs the API server two small requests at most every TTL, not two per scrape.
import { createHash } from 'node:crypto';
import { AuthenticationV1Api, AuthorizationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { type Clock, realClock } from '../runtime/clock.ts';

/** Who a TokenReview says the token belongs to; undefined: not authenticated. */
export interface ReviewedUser {
  username: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

export interface MetricsAuthDeps {
  /** The TokenReview; undefined when the token does not authenticate. Throws when the review could not be made. */
  authenticate(token: string, signal: AbortSignal): Promise<ReviewedUser | undefined>;
  /** The SubjectAccessReview of get on `path`. Throws when the review could not be made. */
  authorize(user: ReviewedUser, path: string, signal: AbortSignal): Promise<boolean>;
  clock?: Clock;
  /** How long a decision is reused. Default 10 s. */
  ttlMs?: number;
  /** Most decisions kept; the oldest goes first. Default 1,000. */
  maxEntries?: number;
}

/** The answer to one request: the HTTP status and a short text for the body. */
export interface AuthDecision {
  status: 200 | 401 | 403 | 500;
  message: string;
}

/** A review may take this long before the request fails with 500. */
const REVIEW_TIMEOUT_MS = 10_000;

/** Pure: the bearer token of an Authorization header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return m?.[1];
}

/** Decides whether a request for `path` with this Authorization header may be served. */
export function metricsAuthorizer(
  deps: MetricsAuthDeps,
): (header: string | undefined, path: string) => Promise<AuthDecision> {
  const clock = deps.clock ?? realClock;
  const ttlMs = deps.ttlMs ?? 10_000;
  const maxEntries = deps.maxEntries ?? 1_000;
  const cache = new Map<string, { decision: AuthDecision; expires: number }>();

  return async (header, path) => {
    const token = bearerToken(header);
    if (!token) return { status: 401, message: 'Unauthorized: a bearer token is required' };
    const key = `${path}\u0000${createHash('sha256').update(token).digest('hex')}`;
    const now = clock.now();
    const hit = cache.get(key);
    if (hit && hit.expires > now) return hit.decision;
    cache.delete(key);
    const decision = await review(deps, token, path);
    // A failed review is not cached: the next scrape asks again.
    if (decision.status === 500) return decision;
    cache.set(key, { decision, expires: now + ttlMs });
    for (const oldest of cache.keys()) {
      if (cache.size <= maxEntries) break;
      cache.delete(oldest);
    }
    return decision;
  };
}

async function review(deps: MetricsAuthDeps, token: string, path: string): Promise<AuthDecision> {
  const signal = AbortSignal.timeout(REVIEW_TIMEOUT_MS);
  let user: ReviewedUser | undefined;
  try {
    user = await bounded(deps.authenticate(token, signal), signal);
  } catch {
    return { status: 500, message: 'Authentication failed: the TokenReview could not be made' };
  }
  if (!user) return { status: 401, message: 'Unauthorized: the token does not authenticate' };
  try {
    if (await bounded(deps.authorize(user, path, signal), signal)) return { status: 200, message: 'ok' };
  } catch {
    return { status: 500, message: 'Authorization failed: the SubjectAccessReview could not be made' };
  }
  return { status: 403, message: `Forbidden: user "${user.username}" may not get path "${path}"` };
}

/** The review, or a rejection once `signal` aborts (client-node's calls take no signal). */
function bounded<T>(review: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(signal.reason);
    signal.addEventListener('abort', abort, { once: true });
    review.then(resolve, reject).finally(() => signal.removeEventListener('abort', abort));
  });
}

/** The TokenReview and SubjectAccessReview against the API server of `kc`. */
export function apiServerReviews(kc: KubeConfig): Pick<MetricsAuthDeps, 'authenticate' | 'authorize'> {
  const authn = kc.makeApiClient(AuthenticationV1Api);
  const authz = kc.makeApiClient(AuthorizationV1Api);
  return {
    async authenticate(token) {
      const r = await authn.createTokenReview({ body: { spec: { token } } });
      const u = r.status?.user;
      if (!r.status?.authenticated || !u?.username) return undefined;
      return { username: u.username, uid: u.uid, groups: u.groups, extra: u.extra };
    },
    async authorize(user, path) {
      const r = await authz.createSubjectAccessReview({
        body: {
          spec: {
            user: user.username,
            uid: user.uid,
            groups: user.groups,
            extra: user.extra,
            nonResourceAttributes: { path, verb: 'get' },
          },
        },
      });
      return r.status?.allowed === true;
    },
  };
}

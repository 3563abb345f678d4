// HTTP GET probe: kubelet semantics (pkg/probe/http) plus successCodes, bodyRegex and TLS verify.
import { VERSION } from '../version.ts';
import { type BodyMatcher, compileBodyRegex } from './body-regex.ts';
import {
  ExchangeError,
  type ExchangeResponse,
  type ExchangeTls,
  type HttpExchange,
  leanExchange,
} from './http-exchange.ts';
import { TOKEN } from './http-parser.ts';
import { formatTimeout, joinHostPort } from './net-errors.ts';
import { parseSuccessCodes, type StatusRanges, statusMatches } from './status-codes.ts';
import { type HTTPGetAction, type HTTPHeader, ProbeConfigError, type ProbeResult } from './types.ts';

/** Only the first 10 KiB of a body is ever read (pkg/probe/http maxRespBodyLength). */
export const MAX_BODY_BYTES = 10 * 1024;
/** Redirect budget: Go's http.Client stops after 10 requests, and so does the kubelet's checker. */
export const MAX_REDIRECTS = 10;

// The codes Go's http.Client follows; any other 3xx (and a 3xx without Location) is final.
const REDIRECT_CODES = new Set([301, 302, 303, 307, 308]);

export interface HttpTarget {
  /** The pod IP. */
  host: string;
  port: number;
  timeoutMs: number;
}

export interface HttpProberOptions {
  /** PEM CA resolved by the caller from caSecretRef; overrides `tls.caBundle`. */
  caPem?: string;
  /** Transport; default the lean HTTP/1.1 exchange (undiciExchange is the alternative). */
  exchange?: HttpExchange;
  /** Monotonic milliseconds; injected for tests. */
  now?: () => number;
}

export interface HttpProber {
  /** Probes one pod; resolves (never rejects) with the result. */
  probe(target: HttpTarget): Promise<ProbeResult>;
}

/**
 * Validates an httpGet action once (headers, successCodes, bodyRegex) and returns a prober to
 * run it against any pod; throws ProbeConfigError for specs that can never run.
 */
export function createHttpProber(action: HTTPGetAction, options: HttpProberOptions = {}): HttpProber {
  const scheme = action.scheme === 'HTTPS' ? 'https' : 'http';
  const ranges = parseSuccessCodes(action.successCodes);
  const matcher = action.bodyRegex ? compileBodyRegex(action.bodyRegex) : undefined;
  const headers = buildHeaders(action.httpHeaders ?? []);
  const path = normalizePath(action.path);
  const tls: ExchangeTls = {
    verify: action.tls?.verify === true,
    ...(action.tls?.serverName ? { serverName: action.tls.serverName } : {}),
    ...(options.caPem || action.tls?.caBundle ? { ca: options.caPem || action.tls?.caBundle } : {}),
  };
  const exchange = options.exchange ?? leanExchange;
  const now = options.now ?? performance.now.bind(performance);
  return {
    probe: (target) => runHttpProbe({ scheme, path, headers, tls, ranges, matcher, exchange, now }, target),
  };
}

interface Compiled {
  scheme: 'http' | 'https';
  path: string;
  headers: ReadonlyArray<readonly [string, string]>;
  tls: ExchangeTls;
  ranges: StatusRanges;
  matcher: BodyMatcher | undefined;
  exchange: HttpExchange;
  now: () => number;
}

async function runHttpProbe(c: Compiled, target: HttpTarget): Promise<ProbeResult> {
  const started = c.now();
  const deadline = started + target.timeoutMs;
  let url = new URL(`${c.scheme}://${joinHostPort(target.host, target.port)}${c.path}`);
  const origin = url;
  const subject = `HTTP GET ${origin.href}`;
  const done = (r: Omit<ProbeResult, 'durationMs'>): ProbeResult => ({ ...r, durationMs: c.now() - started });
  const timeout = (connected: boolean): ProbeResult =>
    done({
      outcome: 'timeout',
      couldNotLook: !connected,
      message: `${subject}: timeout after ${formatTimeout(target.timeoutMs)}${connected ? '' : ' (connect)'}`,
    });

  for (let requests = 1; ; requests++) {
    const remaining = deadline - c.now();
    if (remaining <= 0) return timeout(true);
    let res: ExchangeResponse;
    try {
      res = await c.exchange({
        https: url.protocol === 'https:',
        host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80,
        path: `${url.pathname}${url.search}`,
        // Go sends the URL's host as Host; hop to hop it follows the redirect's URL.
        headers: [['Host', url.host], ...c.headers],
        bodyLimit: MAX_BODY_BYTES,
        timeoutMs: Math.max(1, Math.ceil(remaining)),
        tls: c.tls,
      });
    } catch (err) {
      if (!(err instanceof ExchangeError)) throw err;
      if (err.kind === 'timeout') return timeout(err.connected);
      return done({ outcome: 'failure', couldNotLook: err.couldNotLook, message: `${subject}: ${err.message}` });
    }
    // Where a redirect led is the pod's text (its Location header): only the count is reported.
    const via = requests === 1 ? '' : ` (after ${requests - 1} redirect${requests === 2 ? '' : 's'})`;

    if (REDIRECT_CODES.has(res.status) && res.location) {
      const next = redirect(res.status, res.location, url, origin, requests);
      if (!(next instanceof URL)) return done({ couldNotLook: false, ...next, message: `${subject}: ${next.message}` });
      url = next;
      continue;
    }

    if (!statusMatches(res.status, c.ranges)) {
      return done({ outcome: 'failure', couldNotLook: false, message: `${subject}: ${res.status}${via}` });
    }
    // The body is matched, never reported: it may hold anything, and conditions are public.
    if (c.matcher && !c.matcher.test(res.body.toString('utf8'))) {
      const message = `${subject}: ${res.status}${via}, body does not match bodyRegex (first 10 KiB)`;
      return done({ outcome: 'failure', couldNotLook: false, message });
    }
    return done({ outcome: 'success', couldNotLook: false, message: `${subject}: ${res.status}${via}` });
  }
}

/** Where a redirect leads, or the verdict when it is not followed (its message without the subject). */
function redirect(
  status: number,
  location: string,
  from: URL,
  origin: URL,
  requests: number,
): URL | Pick<ProbeResult, 'outcome' | 'message' | 'warning'> {
  let next: URL;
  try {
    next = new URL(location, from);
  } catch {
    return { outcome: 'failure', message: `${status} with invalid Location` };
  }
  if (next.protocol !== 'http:' && next.protocol !== 'https:') {
    return { outcome: 'failure', message: `${status} redirect to an unsupported scheme` };
  }
  // pkg/probe/http redirectChecker(followNonLocalRedirects=false): a redirect to another
  // host name is not followed and the probe reports Warning, which counts as success.
  if (next.hostname !== origin.hostname) {
    const warning = 'redirect to another host not followed';
    return { outcome: 'success', message: `${status}, ${warning}`, warning };
  }
  if (requests >= MAX_REDIRECTS) return { outcome: 'failure', message: `stopped after ${MAX_REDIRECTS} redirects` };
  return next;
}

// Header rules from pkg/probe/http request.go newProbeRequest: User-Agent and Accept are added
// unless the user set them; an Accept set to "" means "send none".
function buildHeaders(httpHeaders: readonly HTTPHeader[]): Array<readonly [string, string]> {
  const out: Array<readonly [string, string]> = [];
  let userAgent = false;
  let accept = false;
  for (const { name, value } of httpHeaders) {
    if (!TOKEN.test(name))
      throw new ProbeConfigError(`httpHeaders: ${JSON.stringify(name)} is not a valid header name`);
    if (/[\r\n\0]/.test(value)) throw new ProbeConfigError(`httpHeaders: value of ${name} contains CR, LF or NUL`);
    const lower = name.toLowerCase();
    if (lower === 'host') {
      throw new ProbeConfigError('httpHeaders: a Host header is not allowed; readygate always probes the pod IP');
    }
    // No keep-alive is part of the contract; the transport sends its own Connection: close.
    if (lower === 'connection') continue;
    if (lower === 'user-agent') userAgent = true;
    if (lower === 'accept') accept = true;
    // Empty User-Agent/Accept: the user asked for none (Go omits an empty User-Agent).
    if ((lower === 'user-agent' || lower === 'accept') && value === '') continue;
    out.push([name, value]);
  }
  if (!userAgent) out.push(['User-Agent', `readygate/${VERSION}`]);
  if (!accept) out.push(['Accept', '*/*']);
  out.push(['Connection', 'close']);
  return out;
}

// Go's url.URL.String() puts a "/" between host and a relative path; an empty path is "/".
function normalizePath(path: string | undefined): string {
  if (!path) return '/';
  return path.startsWith('/') ? path : `/${path}`;
}

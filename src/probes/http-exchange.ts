// One HTTP/1.1 request/response on a fresh connection, the transport under the HTTP prober.
//
// Why not undici here: a prober opens a new connection for every probe (no keep-alive, by
// design), and connection set-up is where undici spends its time. bench/probes.ts measured
// (bench/probes/RESULTS.md) CPU per 1,000 HTTP probes: this exchange 58.7 ms, undici Client
// 185.9 ms (3.2x), node:http agent:false 114.2 ms (1.9x). undici is kept as an alternative
// transport (http-undici.ts), tested by the same suites, so the benchmark can re-check the
// choice. This module stays small on purpose: GET only, one response, and body framing
// (Content-Length, chunked, close-delimited) only as far as the 10 KiB bodyRegex needs.
import { isIP, connect as netConnect, type Socket } from 'node:net';
import { createSecureContext, type SecureContext, connect as tlsConnect } from 'node:tls';
import { ResponseParser } from './http-parser.ts';
import { classifyNetError, formatTimeout } from './net-errors.ts';

export { MAX_FRAMING_BYTES, MAX_HEAD_BYTES, MAX_HEADER_COUNT, MAX_INTERIM_RESPONSES } from './http-parser.ts';

export interface ExchangeTls {
  verify: boolean;
  /** SNI and identity to verify; default the target host. */
  serverName?: string;
  /** PEM CA bundle to verify against (replaces the system roots). */
  ca?: string;
}

export interface ExchangeRequest {
  https: boolean;
  host: string;
  port: number;
  /** Request target: absolute path plus query, already percent-encoded. */
  path: string;
  /** Final header list, validated by the caller (no CR/LF); the transport adds nothing but framing. */
  headers: ReadonlyArray<readonly [string, string]>;
  /** Stop reading after this many body bytes (the 10 KiB rule). */
  bodyLimit: number;
  timeoutMs: number;
  tls?: ExchangeTls;
  /** The TLS handshake's own cap; default TLS_HANDSHAKE_TIMEOUT_MS (tests shorten it). */
  tlsHandshakeTimeoutMs?: number;
}

export interface ExchangeResponse {
  status: number;
  location: string | undefined;
  /** At most bodyLimit bytes of the (de-chunked) body. */
  body: Buffer;
  /** The body was longer than bodyLimit; the rest was never read. */
  truncated: boolean;
  /** Bytes read from the TCP socket (for tests proving the read cap). */
  bytesRead: number;
}

/** Rejection reason of an exchange: why it failed and whether the TCP handshake had completed. */
export class ExchangeError extends Error {
  override name = 'ExchangeError';
  readonly kind: 'timeout' | 'network' | 'protocol';
  readonly connected: boolean;
  readonly couldNotLook: boolean;
  constructor(kind: 'timeout' | 'network' | 'protocol', text: string, connected: boolean, couldNotLook: boolean) {
    super(text);
    this.kind = kind;
    this.connected = connected;
    this.couldNotLook = couldNotLook;
  }
}

/** Performs one HTTP exchange; resolves with the response or rejects with an ExchangeError. */
export type HttpExchange = (req: ExchangeRequest) => Promise<ExchangeResponse>;

/**
 * Go's transport, and so the kubelet's prober (utilnet.SetTransportDefaults), gives the TLS
 * handshake 10 s of its own; a pod that accepts TCP and then stalls costs no more than that
 * under a longer timeoutSeconds.
 */
export const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

/** One read off a plain socket; a capped exchange reads at most this far past the cap. */
export const READ_BUFFER_BYTES = 4 * 1024;
// Plain sockets read into this one buffer (net.Socket `onread`): no allocation per read, and
// each read(2) takes at most 4 KiB, so we stop pulling bytes off the socket right after the
// 10 KiB we need. Safe to share: the callback runs synchronously and copies what it keeps.
const READ_BUFFER = Buffer.allocUnsafe(READ_BUFFER_BYTES);

/** Sends a GET over a new TCP (or TLS) connection and reads the response head and capped body. */
export function leanExchange(req: ExchangeRequest): Promise<ExchangeResponse> {
  return new Promise((resolve, reject) => {
    const parser = new ResponseParser(req.bodyLimit);
    let connected = false;
    let settled = false;

    const settle = (err: ExchangeError | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(handshakeTimer);
      const bytesRead = tcp.bytesRead;
      // RST instead of FIN once connected: no TIME_WAIT pile-up (cf. kubelet SO_LINGER, pkg/probe/tcp).
      if (connected && !tcp.destroyed) tcp.resetAndDestroy();
      else tcp.destroy();
      if (stream !== tcp) stream.destroy();
      if (err) reject(err);
      else resolve({ ...parser.response(), bytesRead });
    };
    const onChunk = (chunk: Buffer): boolean => {
      if (settled) return false;
      try {
        if (parser.feed(chunk)) settle(undefined);
      } catch (e) {
        settle(new ExchangeError('protocol', (e as Error).message, true, false));
      }
      return !settled;
    };
    const onError = (err: Error): void => {
      const c = classifyNetError(err);
      settle(new ExchangeError('network', c.text, connected, c.couldNotLook));
    };

    const { tcp, stream } = openStream(req, onChunk, onError);
    let handshakeTimer: NodeJS.Timeout | undefined;
    const handshakeMs = req.tlsHandshakeTimeoutMs ?? TLS_HANDSHAKE_TIMEOUT_MS;
    if (req.https && req.timeoutMs > handshakeMs) {
      // Under a shorter timeout the one deadline below is the cap: no second timer per probe.
      // A failure, not a timeout of the probe: the pod answered TCP and then stalled (Go says
      // "net/http: TLS handshake timeout" and the kubelet fails the probe).
      const stalled = (): void =>
        settle(new ExchangeError('network', `TLS handshake timeout after ${formatTimeout(handshakeMs)}`, true, false));
      tcp.once('connect', () => {
        handshakeTimer = setTimeout(stalled, handshakeMs);
      });
      stream.once('secureConnect', () => clearTimeout(handshakeTimer));
    }
    tcp.on('error', onError);
    tcp.once('connect', () => {
      connected = true;
    });
    stream.on('end', () => {
      if (settled) return;
      try {
        parser.end();
        settle(undefined);
      } catch (e) {
        settle(new ExchangeError('protocol', (e as Error).message, true, false));
      }
    });
    // A hard deadline over connect, TLS, head and body alike (Go's http.Client.Timeout).
    const timer = setTimeout(() => {
      const what = connected ? '' : ' (connect)';
      // No handshake in time: the path may be broken on our side, so the failsafe must know.
      settle(
        new ExchangeError('timeout', `timeout after ${formatTimeout(req.timeoutMs)}${what}`, connected, !connected),
      );
    }, req.timeoutMs);
    stream.write(serializeRequest(req), 'latin1');
  });
}

const NO_TLS_OPTIONS: ExchangeTls = { verify: false };
// Building a secure context (the CA store) is a third of a TLS probe's CPU when the pod never
// answers; one per TLS options object (http.ts compiles one per policy) is built once.
const secureContexts = new WeakMap<ExchangeTls, SecureContext>();
function secureContextFor(tls: ExchangeTls): SecureContext {
  let context = secureContexts.get(tls);
  if (!context) {
    context = createSecureContext(tls.ca ? { ca: tls.ca } : {});
    secureContexts.set(tls, context);
  }
  return context;
}

// A plain socket reads into the shared buffer; a TLS one emits its decrypted records.
function openStream(
  req: ExchangeRequest,
  onChunk: (chunk: Buffer) => boolean,
  onError: (err: Error) => void,
): { tcp: Socket; stream: Socket } {
  if (!req.https) {
    const tcp = netConnect({
      host: req.host,
      port: req.port,
      onread: { buffer: READ_BUFFER, callback: (n) => onChunk(READ_BUFFER.subarray(0, n)) },
    });
    return { tcp, stream: tcp };
  }
  const tcp = netConnect({ host: req.host, port: req.port });
  const tls = req.tls ?? NO_TLS_OPTIONS;
  const serverName = tls.serverName || undefined;
  const stream = tlsConnect({
    socket: tcp,
    host: serverName ?? req.host,
    // SNI may not carry an IP literal (RFC 6066); Node warns if asked to.
    ...(serverName && isIP(serverName) === 0 ? { servername: serverName } : {}),
    rejectUnauthorized: tls.verify,
    secureContext: secureContextFor(tls),
  });
  stream.on('data', onChunk);
  stream.on('error', onError);
  return { tcp, stream };
}

function serializeRequest(req: ExchangeRequest): string {
  let head = `GET ${req.path} HTTP/1.1\r\n`;
  for (const [name, value] of req.headers) head += `${name}: ${value}\r\n`;
  return `${head}\r\n`;
}

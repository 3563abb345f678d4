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
import { connect as tlsConnect } from 'node:tls';
import { classifyNetError, formatTimeout } from './net-errors.ts';

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

const MAX_HEAD_BYTES = 64 * 1024;
const MAX_LINE_BYTES = 4 * 1024;
// Plain sockets read into this one buffer (net.Socket `onread`): no allocation per read, and
// each read(2) takes at most 4 KiB, so we stop pulling bytes off the socket right after the
// 10 KiB we need. Safe to share: the callback runs synchronously and copies what it keeps.
const READ_BUFFER = Buffer.allocUnsafe(4 * 1024);

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
      const bytesRead = tcp.bytesRead;
      // RST instead of FIN once connected: no TIME_WAIT pile-up (cf. kubelet SO_LINGER, pkg/probe/tcp).
      if (connected && !tcp.destroyed) tcp.resetAndDestroy();
      else tcp.destroy();
      if (stream !== tcp) stream.destroy();
      if (err) reject(err);
      else resolve(parser.response(bytesRead));
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

    let tcp: Socket;
    let stream: Socket;
    if (req.https) {
      tcp = netConnect({ host: req.host, port: req.port });
      const tls = req.tls ?? { verify: false };
      const serverName = tls.serverName || undefined;
      stream = tlsConnect({
        socket: tcp,
        host: serverName ?? req.host,
        // SNI may not carry an IP literal (RFC 6066); Node warns if asked to.
        ...(serverName && isIP(serverName) === 0 ? { servername: serverName } : {}),
        rejectUnauthorized: tls.verify,
        ...(tls.ca ? { ca: tls.ca } : {}),
      });
      stream.on('data', onChunk);
      stream.on('error', onError);
    } else {
      tcp = netConnect({
        host: req.host,
        port: req.port,
        onread: { buffer: READ_BUFFER, callback: (n) => onChunk(READ_BUFFER.subarray(0, n)) },
      });
      stream = tcp;
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

function serializeRequest(req: ExchangeRequest): string {
  let head = `GET ${req.path} HTTP/1.1\r\n`;
  for (const [name, value] of req.headers) head += `${name}: ${value}\r\n`;
  return `${head}\r\n`;
}

const S = {
  head: 0,
  fixed: 1,
  chunkSize: 2,
  chunkData: 3,
  chunkDataEnd: 4,
  trailers: 5,
  untilClose: 6,
  done: 7,
} as const;
type ParserState = (typeof S)[keyof typeof S];

/** Incremental HTTP/1.x response parser: status, Location, and the first `limit` body bytes. */
export class ResponseParser {
  private state: ParserState = S.head;
  private partialHead: Buffer | undefined;
  private line = '';
  private remaining = 0;
  private readonly parts: Buffer[] = [];
  private bodyLength = 0;
  private truncated = false;
  private status = 0;
  private location: string | undefined;
  private readonly limit: number;

  constructor(limit: number) {
    this.limit = limit;
  }

  /** Consumes bytes (copying what it keeps); returns true once the response is complete or capped. */
  feed(chunk: Buffer): boolean {
    let buf = chunk;
    while (buf.length > 0 && this.state !== S.done) {
      buf = this.step(buf);
    }
    return this.state === S.done;
  }

  /** Signals EOF: completes a close-delimited body, and throws if the response was cut short. */
  end(): void {
    if (this.state === S.untilClose || this.state === S.done) {
      this.state = S.done;
      return;
    }
    throw new Error(this.state === S.head ? 'connection closed before response headers' : 'connection closed mid-body');
  }

  response(bytesRead: number): ExchangeResponse {
    const body = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.bodyLength);
    return { status: this.status, location: this.location, body, truncated: this.truncated, bytesRead };
  }

  private step(buf: Buffer): Buffer {
    switch (this.state) {
      case S.head:
        return this.stepHead(buf);
      case S.fixed: {
        const n = Math.min(this.remaining, buf.length);
        this.remaining -= n;
        this.take(buf.subarray(0, n), this.remaining === 0);
        return buf.subarray(n);
      }
      case S.chunkData: {
        const n = Math.min(this.remaining, buf.length);
        this.remaining -= n;
        if (this.remaining === 0) this.state = S.chunkDataEnd;
        this.take(buf.subarray(0, n), false);
        return buf.subarray(n);
      }
      case S.untilClose:
        this.take(buf, false);
        return buf.subarray(buf.length);
      default:
        return this.stepLine(buf);
    }
  }

  private stepHead(buf: Buffer): Buffer {
    let data = buf;
    let searchFrom = 0;
    if (this.partialHead) {
      searchFrom = Math.max(0, this.partialHead.length - 3);
      data = Buffer.concat([this.partialHead, buf]);
    }
    const end = data.indexOf('\r\n\r\n', searchFrom, 'latin1');
    if (end < 0) {
      if (data.length > MAX_HEAD_BYTES) throw new Error('response headers larger than 64 KiB');
      this.partialHead = Buffer.from(data); // copy: `buf` may be the shared read buffer
      return buf.subarray(buf.length);
    }
    this.partialHead = undefined;
    this.parseHead(data.toString('latin1', 0, end));
    // May alias the shared read buffer; the body states copy what they keep.
    return data.subarray(end + 4);
  }

  private parseHead(head: string): void {
    const lines = head.split('\r\n');
    const statusLine = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(lines[0] ?? '');
    if (!statusLine) throw new Error('malformed HTTP status line');
    const status = Number(statusLine[1]);
    let contentLength: number | undefined;
    let transferEncoding: string | undefined;
    let location: string | undefined;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(':');
      if (colon <= 0) throw new Error('malformed HTTP header line');
      const name = line.slice(0, colon).toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'content-length') {
        if (!/^\d+$/.test(value)) throw new Error('invalid Content-Length');
        const n = Number(value);
        if (contentLength !== undefined && contentLength !== n) throw new Error('conflicting Content-Length');
        contentLength = n;
      } else if (name === 'transfer-encoding') {
        transferEncoding = transferEncoding ? `${transferEncoding},${value}` : value;
      } else if (name === 'location') {
        location = value;
      }
    }
    // 1xx (except 101) are interim: skip them and read the real response, as Go's transport does.
    if (status >= 100 && status < 200 && status !== 101) return;
    this.status = status;
    this.location = location;
    if (status < 200 || status === 204 || status === 304) {
      this.state = S.done;
    } else if (transferEncoding !== undefined) {
      // RFC 9112 §6.3: Transfer-Encoding overrides Content-Length; chunked must be last,
      // otherwise the body runs until close.
      const codings = transferEncoding.toLowerCase().split(',');
      this.state = codings[codings.length - 1]?.trim() === 'chunked' ? S.chunkSize : S.untilClose;
    } else if (contentLength !== undefined) {
      this.remaining = contentLength;
      this.state = contentLength === 0 ? S.done : S.fixed;
    } else {
      this.state = S.untilClose;
    }
  }

  // Chunk-size lines, the CRLF after chunk data, and trailers: line-oriented states.
  private stepLine(buf: Buffer): Buffer {
    const nl = buf.indexOf(10);
    const piece = buf.toString('latin1', 0, nl < 0 ? buf.length : nl);
    this.line += piece;
    if (this.line.length > MAX_LINE_BYTES) throw new Error('chunked framing line too long');
    if (nl < 0) return buf.subarray(buf.length);
    const line = this.line.endsWith('\r') ? this.line.slice(0, -1) : this.line;
    this.line = '';
    if (this.state === S.chunkSize) {
      const sizeText = (line.split(';', 1)[0] ?? '').trim();
      if (!/^[0-9a-fA-F]{1,8}$/.test(sizeText)) throw new Error('invalid chunk size');
      const size = Number.parseInt(sizeText, 16);
      if (size === 0) this.state = S.trailers;
      else {
        this.remaining = size;
        this.state = S.chunkData;
      }
    } else if (this.state === S.chunkDataEnd) {
      if (line !== '') throw new Error('missing CRLF after chunk data');
      this.state = S.chunkSize;
    } else if (line === '') {
      this.state = S.done; // end of trailers
    }
    return buf.subarray(nl + 1);
  }

  // Keeps at most `limit` body bytes; reaching the cap ends the exchange (the kubelet reads
  // at most 10 KiB too, pkg/probe/http maxRespBodyLength).
  private take(bytes: Buffer, bodyComplete: boolean): void {
    const room = this.limit - this.bodyLength;
    if (room > 0 && bytes.length > 0) {
      const kept = bytes.length <= room ? bytes : bytes.subarray(0, room);
      this.parts.push(Buffer.from(kept)); // copy: `bytes` may alias the shared read buffer
      this.bodyLength += kept.length;
    }
    if (bodyComplete) {
      this.state = S.done;
    } else if (this.bodyLength >= this.limit) {
      this.truncated = true;
      this.state = S.done;
    }
  }
}

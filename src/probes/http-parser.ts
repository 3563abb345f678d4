// Incremental HTTP/1.x response parser for the prober's own client (http-exchange.ts). Every byte
// it reads comes from a tenant's pod, so every input is bounded: what one response may make us
// read, hold and parse is capped below, whatever the pod sends and however it trickles it.
// Fuzzed against llhttp (Node's parser) in test/fuzz/http-response.ts.

/** Head bytes per exchange, summed over 1xx interim heads, the final head and chunked trailers. */
export const MAX_HEAD_BYTES = 64 * 1024;
/** Header fields in one head. */
export const MAX_HEADER_COUNT = 256;
/** 1xx interim responses skipped before the final one (Go's transport: max1xxResponses = 5). */
export const MAX_INTERIM_RESPONSES = 5;
/** Chunked framing (size lines, extensions, CRLFs) read besides the body's own bytes. */
export const MAX_FRAMING_BYTES = 16 * 1024;
/** One chunk-size or trailer line. */
const MAX_LINE_BYTES = 4 * 1024;

// RFC 9110 §5.6.2 token, for field names: no space before the colon, no CTL, no separators.
export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// RFC 9110 §5.5 field values: no CTL other than HTAB (a NUL, bare CR or bare LF is an error).
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is its job
const BAD_LINE = /[\0-\x08\x0a-\x1f\x7f]/;
// Optional whitespace is SP and HTAB only (String.trim would also strip \v, \f and U+00A0).
const OWS_EDGES = /^[ \t]+|[ \t]+$/g;

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

export interface ParsedResponse {
  status: number;
  location: string | undefined;
  /** At most `limit` bytes of the (de-chunked) body. */
  body: Buffer;
  /** The body was longer than `limit`; the rest was never read. */
  truncated: boolean;
}

/** Status, Location, and the first `limit` body bytes; throws an Error on anything malformed or over a cap. */
export class ResponseParser {
  private state: ParserState = S.head;
  /** A head spread over reads, gathered in one buffer that doubles (no copy of it per read). */
  private headBuf: Buffer | undefined;
  private headLen = 0;
  private headBytes = 0;
  private interim = 0;
  private framingBytes = 0;
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

  response(): ParsedResponse {
    const body = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.bodyLength);
    return { status: this.status, location: this.location, body, truncated: this.truncated };
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
    const room = MAX_HEAD_BYTES - this.headBytes;
    if (this.headLen === 0) {
      // The common case: the whole head in one read, parsed where it lies.
      const end = buf.indexOf('\r\n\r\n', 0, 'latin1');
      if (end >= 0 && end + 4 <= room) {
        this.headBytes += end + 4;
        this.parseHead(buf.toString('latin1', 0, end));
        return buf.subarray(end + 4); // may alias the shared read buffer; the body states copy
      }
    }
    const before = this.headLen;
    const n = Math.min(buf.length, room - before);
    this.appendHead(buf.subarray(0, n));
    const head = this.headBuf!.subarray(0, this.headLen);
    const end = head.indexOf('\r\n\r\n', Math.max(0, before - 3), 'latin1');
    if (end < 0) {
      if (this.headLen >= room) throw new Error('response headers larger than 64 KiB');
      return buf.subarray(n);
    }
    this.headLen = 0;
    this.headBytes += end + 4;
    this.parseHead(head.toString('latin1', 0, end));
    return buf.subarray(end + 4 - before);
  }

  // Copies into the head buffer (the read may be the shared read buffer), doubling it as needed.
  private appendHead(bytes: Buffer): void {
    const need = this.headLen + bytes.length;
    if (!this.headBuf || this.headBuf.length < need) {
      const grown = Buffer.allocUnsafe(Math.min(MAX_HEAD_BYTES, Math.max(need, 2 * (this.headBuf?.length ?? 1024))));
      this.headBuf?.copy(grown, 0, 0, this.headLen);
      this.headBuf = grown;
    }
    bytes.copy(this.headBuf, this.headLen);
    this.headLen = need;
  }

  private parseHead(head: string): void {
    // Split no further than the cap: a head of 13,000 tiny fields is refused without cutting them all.
    const lines = head.split('\r\n', MAX_HEADER_COUNT + 2);
    const statusLine = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(lines[0] ?? '');
    if (!statusLine || BAD_LINE.test(lines[0]!)) throw new Error('malformed HTTP status line');
    if (lines.length - 1 > MAX_HEADER_COUNT) throw new Error(`more than ${MAX_HEADER_COUNT} response headers`);
    const status = Number(statusLine[1]);
    const fields = parseFields(lines);
    // 1xx (except 101) are interim: skip them and read the real response, as Go's transport does.
    if (status >= 100 && status < 200 && status !== 101) {
      if (++this.interim > MAX_INTERIM_RESPONSES) throw new Error('too many 1xx informational responses');
      return;
    }
    this.status = status;
    this.location = fields.location;
    // No body after 101, 204 or 304; any other status has one (a status under 100 included, as Go).
    if (status === 101 || status === 204 || status === 304) {
      this.state = S.done;
    } else if (fields.transferEncoding !== undefined) {
      // RFC 9112 §6.3: Transfer-Encoding overrides Content-Length; chunked must be last,
      // otherwise the body runs until close.
      const codings = fields.transferEncoding.toLowerCase().split(',');
      this.state = codings[codings.length - 1]?.replace(OWS_EDGES, '') === 'chunked' ? S.chunkSize : S.untilClose;
    } else if (fields.contentLength !== undefined) {
      this.remaining = fields.contentLength;
      this.state = fields.contentLength === 0 ? S.done : S.fixed;
    } else {
      this.state = S.untilClose;
    }
  }

  // Chunk-size lines, the CRLF after chunk data, and trailers: line-oriented states. Framing
  // counts against MAX_FRAMING_BYTES and trailers against MAX_HEAD_BYTES, so neither can be
  // used to make us read without end while the body stays under its cap.
  private stepLine(buf: Buffer): Buffer {
    const nl = buf.indexOf(10);
    const used = nl < 0 ? buf.length : nl + 1;
    if (this.state === S.trailers) {
      this.headBytes += used;
      if (this.headBytes > MAX_HEAD_BYTES) throw new Error('response headers larger than 64 KiB');
    } else {
      this.framingBytes += used;
      if (this.framingBytes > MAX_FRAMING_BYTES) throw new Error('chunked framing larger than 16 KiB');
    }
    this.line += buf.toString('latin1', 0, nl < 0 ? buf.length : nl);
    if (this.line.length > MAX_LINE_BYTES) throw new Error('chunked framing line too long');
    if (nl < 0) return buf.subarray(buf.length);
    const line = this.line.endsWith('\r') ? this.line.slice(0, -1) : this.line;
    this.line = '';
    if (this.state === S.chunkSize) {
      const size = chunkSize(line);
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

interface Fields {
  contentLength: number | undefined;
  transferEncoding: string | undefined;
  location: string | undefined;
}

// The header fields the parser acts on; every line is checked whether it is used or not.
function parseFields(lines: readonly string[]): Fields {
  const fields: Fields = { contentLength: undefined, transferEncoding: undefined, location: undefined };
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon) : '';
    // An obs-fold line (leading space) has no token before its colon and is refused here too.
    if (!TOKEN.test(name)) throw new Error('malformed HTTP header line');
    if (BAD_LINE.test(line)) throw new Error('malformed HTTP header value');
    const lower = name.toLowerCase();
    if (lower !== 'content-length' && lower !== 'transfer-encoding' && lower !== 'location') continue;
    const value = line.slice(colon + 1).replace(OWS_EDGES, '');
    if (lower === 'content-length') {
      if (!/^\d+$/.test(value)) throw new Error('invalid Content-Length');
      const n = Number(value);
      if (fields.contentLength !== undefined && fields.contentLength !== n)
        throw new Error('conflicting Content-Length');
      fields.contentLength = n;
    } else if (lower === 'transfer-encoding') {
      fields.transferEncoding = fields.transferEncoding ? `${fields.transferEncoding},${value}` : value;
    } else if (lower === 'location') {
      fields.location ??= value; // the first one, as Go's Header.Get and llhttp
    }
  }
  return fields;
}

function chunkSize(line: string): number {
  const semi = line.indexOf(';');
  const text = (semi < 0 ? line : line.slice(0, semi)).replace(OWS_EDGES, '');
  if (!/^[0-9a-fA-F]{1,8}$/.test(text)) throw new Error('invalid chunk size');
  return Number.parseInt(text, 16);
}

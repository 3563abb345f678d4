// Hand-written protobuf for grpc.health.v1's two messages: one string field in, one enum out.
// A proto loader at run time (and its dependency tree) was passed over. Every byte decoded here
// comes from the probed pod: the decoder reads each byte once, and accepts and rejects what the
// kubelet's decoder (Go's protobuf) does, as test/unit/probes/health-proto.test.ts checks case
// by case and test/unit/probes/health-proto.fuzz.test.ts by fuzzing.

/** grpc.health.v1.HealthCheckResponse.ServingStatus, by wire value. */
export const SERVING_STATUS = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'] as const;

/** Encodes HealthCheckRequest { string service = 1; } (empty service → empty message). */
export function encodeHealthCheckRequest(req: { service?: string }): Buffer {
  const service = Buffer.from(req.service ?? '', 'utf8');
  if (service.length === 0) return Buffer.alloc(0);
  const len = encodeVarint(service.length);
  return Buffer.concat([Buffer.from([0x0a]), len, service]);
}

// Go refuses a proto3 string that is not UTF-8; a BOM is a character like any other.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Decodes HealthCheckRequest; unknown fields are skipped, a service name not in UTF-8 is an error. */
export function decodeHealthCheckRequest(buf: Buffer): { service: string } {
  let service = '';
  walkFields(buf, (field, wireType, r) => {
    if (field !== 1 || wireType !== LEN) return false;
    service = utf8.decode(r.bytes());
    return true;
  });
  return { service };
}

/** Encodes HealthCheckResponse { ServingStatus status = 1; }. */
export function encodeHealthCheckResponse(res: { status: number }): Buffer {
  if (res.status === 0) return Buffer.alloc(0);
  return Buffer.concat([Buffer.from([0x08]), encodeVarint(res.status)]);
}

/**
 * Decodes HealthCheckResponse into its numeric status (0 = UNKNOWN when absent). The enum is an
 * int32 sent as a varint: like Go, only its low 32 bits count, so 2^32 + 1 is 1 (SERVING).
 */
export function decodeHealthCheckResponse(buf: Buffer): { status: number } {
  let status = 0;
  walkFields(buf, (field, wireType, r) => {
    if (field !== 1 || wireType !== VARINT) return false;
    status = r.varint() | 0;
    return true;
  });
  return { status };
}

/** Names a serving status value as in health.proto, or "status <n>" for unknown values. */
export function servingStatusName(status: number): string {
  return SERVING_STATUS[status] ?? `status ${status}`;
}

function encodeVarint(n: number): Buffer {
  const bytes: number[] = [];
  // A negative int32 goes out sign-extended to 64 bits (10 bytes), as Go and protoc send it.
  let v = BigInt.asUintN(64, BigInt(n));
  while (v > 0x7fn) {
    bytes.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  bytes.push(Number(v));
  return Buffer.from(bytes);
}

// Wire types, as named in the protobuf encoding spec.
const VARINT = 0;
const I64 = 1;
const LEN = 2;
const SGROUP = 3;
const EGROUP = 4;
const I32 = 5;

const MAX_FIELD = 2 ** 29 - 1;
const MAX_GROUP_FIELD = 2 ** 31 - 1;

/** Nesting of skipped groups the kubelet's decoder allows (protowire's recursion limit, 10,000, plus the outermost). */
const MAX_GROUP_DEPTH = 10_001;

/** Reads protobuf wire format; every read checks that its bytes are there. */
class WireReader {
  pos = 0;
  /** Bits 32-63 of the last varint read (varint() returns bits 0-31). */
  high = 0;

  readonly #buf: Buffer;

  constructor(buf: Buffer) {
    this.#buf = buf;
  }

  get done(): boolean {
    return this.pos >= this.#buf.length;
  }

  /**
   * Reads a varint of at most 64 bits and returns its low 32 bits, unsigned (exact at any size).
   * Like Go's protowire, more than 10 bytes, or a 10th byte over 1, is an error.
   */
  varint(): number {
    let low = 0;
    let high = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.#buf.length) throw new Error('truncated varint');
      const b = this.#buf[this.pos++]!;
      if (i === 9 && b > 1) throw new Error('varint overflows 64 bits');
      const bits = b & 0x7f;
      if (i < 4) low |= bits << (7 * i);
      else if (i === 4) {
        low |= bits << 28; // << keeps the 4 bits that fit
        high = bits >>> 4;
      } else high |= bits << (7 * i - 32);
      if (b < 0x80) {
        this.high = high >>> 0;
        return low >>> 0;
      }
    }
    throw new Error('varint overflows 64 bits'); // not reached: a 10th byte ≤ 1 ends the varint
  }

  /**
   * Reads a tag whose field number must be 1..maxField: Go checks 2^29 - 1 (the largest a .proto
   * may declare) for a message's own fields, and only 2^31 - 1 inside a group it skips.
   */
  tag(maxField = MAX_FIELD): { field: number; wireType: number } {
    const key = this.varint();
    const field = this.high * 2 ** 29 + (key >>> 3);
    if (field === 0 || field > maxField) throw new Error(`field number ${field} out of range`);
    return { field, wireType: key & 7 };
  }

  /** Reads a length-delimited field's payload. */
  bytes(): Buffer {
    const len = this.varint();
    if (this.high !== 0 || len > this.#buf.length - this.pos) throw new Error('truncated length-delimited field');
    const start = this.pos;
    this.pos += len;
    return this.#buf.subarray(start, this.pos);
  }

  fixed(size: number): void {
    if (size > this.#buf.length - this.pos) throw new Error('truncated fixed-width field');
    this.pos += size;
  }

  /**
   * Skips a field's value; a group's fields are skipped in turn up to its own end-group tag, with
   * `open` holding the field numbers of the groups not yet ended (a loop, not recursion: the
   * nesting a message can ask for is bounded by MAX_GROUP_DEPTH, not by the stack).
   */
  skip(field: number, wireType: number): void {
    const open: number[] = [];
    for (let [f, wt] = [field, wireType]; ; ) {
      if (wt === VARINT) this.varint();
      else if (wt === I64) this.fixed(8);
      else if (wt === LEN) this.bytes();
      else if (wt === I32) this.fixed(4);
      else if (wt === SGROUP) {
        if (open.length === MAX_GROUP_DEPTH) throw new Error(`groups nested over ${MAX_GROUP_DEPTH} deep`);
        open.push(f);
      } else if (wt === EGROUP) {
        if (open.pop() !== f) throw new Error(`end-group tag of field ${f} closes no group of that field`);
      } else throw new Error(`unsupported wire type ${wt}`);
      if (open.length === 0) return;
      ({ field: f, wireType: wt } = this.tag(MAX_GROUP_FIELD));
    }
  }
}

/** Calls visit for each top-level field; fields it does not read (it returns false) are skipped. */
function walkFields(buf: Buffer, visit: (field: number, wireType: number, r: WireReader) => boolean): void {
  const r = new WireReader(buf);
  while (!r.done) {
    const { field, wireType } = r.tag();
    if (!visit(field, wireType, r)) r.skip(field, wireType);
  }
}

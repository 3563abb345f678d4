// Property-based fuzzing of the hand-written grpc.health.v1 decoders (src/probes/health-proto.ts).
// A gRPC probe target is tenant code, so every byte of its answer is hostile input. Shared by
// test/unit/probes/health-proto.fuzz.test.ts (bounded runs in CI) and long-run fuzz scripts,
// which call the property functions and pass numRuns to fc.assert.
//
// The rules followed are those of the kubelet's decoder (Go's google.golang.org/protobuf, through
// grpc-go): varints of at most 10 bytes (the 10th at most 1), field numbers 1..2^29-1 (inside a
// skipped group 1..2^31-1), wire types 6 and 7 and stray end-group tags rejected, groups skipped
// up to 10,001 deep, a known field with another wire type skipped as unknown, an enum truncated to
// int32, the last value of a repeated scalar winning, proto3 strings valid UTF-8.
//
// Three oracles judge each input:
// - structured inputs are built from a model (pieces → bytes), which says what Go decodes;
// - protobufjs decodes every input, and where both accept, both must agree, except where
//   protobufjs is seen to part from the wire format (see referenceDecode);
// - every input: the decoder returns or throws an Error, reading each byte at most once.
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { decodeHealthCheckRequest, decodeHealthCheckResponse } from '../../src/probes/health-proto.ts';

/** What a decoder gives for an input: a value, or the message of the Error it threw. */
export type Decoded<T> = { ok: true; value: T } | { ok: false; error: string };

/** A fuzz input and, when it was built from a model, what the kubelet's decoder makes of it. */
export interface FuzzInput<T> {
  bytes: Uint8Array;
  /** 'reject' or the decoded value; absent for random or mutated bytes. */
  expected?: T | 'reject';
}

// ---- wire encoding, from the protobuf encoding spec (BigInt: varints are 64-bit) ----

const U64 = (1n << 64n) - 1n;
export const MAX_FIELD = 2 ** 29 - 1;
const MAX_GROUP_FIELD = 2 ** 31 - 1;

/** Minimal varint length of an unsigned 64-bit value. */
function varintLength(value: bigint): number {
  let n = 1;
  for (let v = value >> 7n; v > 0n; v >>= 7n) n++;
  return n;
}

/** Encodes value as a varint in exactly `length` bytes (≥ its minimal length; padding is 0x80 … 0x00). */
export function varint(value: bigint, length = varintLength(value)): number[] {
  const out: number[] = [];
  let v = value;
  for (let i = 0; i < length; i++) {
    const low = Number(v & 0x7fn);
    v >>= 7n;
    out.push(i < length - 1 ? low | 0x80 : low);
  }
  return out;
}

function tag(field: number, wireType: number, pad: number): number[] {
  const key = (BigInt(field) << 3n) | BigInt(wireType);
  return varint(key, Math.min(10, varintLength(key) + pad));
}

// ---- the model: well-formed pieces ----

/** A field 1 string payload; its validity as UTF-8 is decided when it is built, not by decoding it. */
export interface TextPayload {
  valid: boolean;
  bytes: Uint8Array;
  /** The string, when valid. */
  text?: string;
}

export type Piece =
  | { kind: 'varint'; field: number; value: bigint; pad: number; tagPad: number }
  | { kind: 'fixed'; field: number; bytes: Uint8Array; tagPad: number }
  | { kind: 'bytes'; field: number; payload: Uint8Array; pad: number; tagPad: number; text?: TextPayload }
  | { kind: 'group'; field: number; pieces: Piece[]; tagPad: number };

export function encodePiece(p: Piece): number[] {
  switch (p.kind) {
    case 'varint':
      return [...tag(p.field, 0, p.tagPad), ...varint(p.value, Math.min(10, varintLength(p.value) + p.pad))];
    case 'fixed':
      return [...tag(p.field, p.bytes.length === 8 ? 1 : 5, p.tagPad), ...p.bytes];
    case 'bytes': {
      const len = BigInt(p.payload.length);
      return [...tag(p.field, 2, p.tagPad), ...varint(len, varintLength(len) + p.pad), ...p.payload];
    }
    case 'group':
      return [...tag(p.field, 3, p.tagPad), ...p.pieces.flatMap(encodePiece), ...tag(p.field, 4, 0)];
  }
}

const valueArb = fc.oneof(
  fc.constantFrom(0n, 1n, 2n, 3n, 4n, 127n, 128n, 2n ** 31n - 1n, 2n ** 31n, 2n ** 32n, 2n ** 32n + 1n),
  fc.constantFrom(2n ** 32n + 2n, 2n ** 35n + 1n, 2n ** 53n + 1n, 2n ** 63n, U64, U64 - 1n),
  fc.integer({ min: 0, max: 300 }).map(BigInt),
  fc.bigInt({ min: 0n, max: U64 }),
);

const fieldArb = (inGroup: boolean) =>
  fc.oneof(
    { weight: 4, arbitrary: fc.constant(1) },
    { weight: 3, arbitrary: fc.integer({ min: 2, max: 20 }) },
    { weight: 1, arbitrary: fc.integer({ min: 21, max: inGroup ? MAX_GROUP_FIELD : MAX_FIELD }) },
    { weight: 1, arbitrary: fc.constant(inGroup ? MAX_GROUP_FIELD : MAX_FIELD) },
  );

/** Extra bytes of a non-minimal varint (most are minimal). */
const padArb = fc.oneof(
  { weight: 5, arbitrary: fc.constant(0) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 9 }) },
);

/** Valid UTF-8 (a BOM included, which must be kept), or text with a sequence Go's utf8.Valid refuses. */
export const textPayloadArb: fc.Arbitrary<TextPayload> = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 12 }).map((text) => ({ valid: true, text, bytes: Buffer.from(text) })),
  fc.string({ maxLength: 6 }).map((s) => ({ valid: true, text: `\ufeff${s}`, bytes: Buffer.from(`\ufeff${s}`) })),
  fc
    .tuple(
      fc.string({ maxLength: 6 }),
      // lone continuation, 0xff, overlong "/", a surrogate, truncated 3-byte, above U+10FFFF, 5-byte form
      fc.constantFrom('80', 'ff', 'c0af', 'eda080', 'e282', 'f4908080', 'f888808080'),
      fc.string({ maxLength: 6 }),
    )
    .map(([a, bad, b]) => ({
      valid: false,
      bytes: Buffer.concat([Buffer.from(a), Buffer.from(bad, 'hex'), Buffer.from(b)]),
    })),
);

const bytesPieceArb = (field: fc.Arbitrary<number>, pad: fc.Arbitrary<number>): fc.Arbitrary<Piece> =>
  fc
    .record({ field, payload: fc.uint8Array({ maxLength: 12 }), text: textPayloadArb, pad, tagPad: pad })
    .map(({ field, payload, text, pad, tagPad }) =>
      // Field 1 of a request is the service name: its payload is text whose validity is known.
      field === 1
        ? { kind: 'bytes', field, payload: text.bytes, text, pad, tagPad }
        : { kind: 'bytes', field, payload, pad, tagPad },
    );

export interface PiecesOptions {
  /** Groups nest up to this deep. */
  depth: number;
  inGroup?: boolean;
  maxPieces?: number;
  /**
   * Only minimal varints, and field 1 only with the wire type of the message's field (a varint in
   * a response, bytes in a request): messages protobufjs reads as the wire format says (see
   * referenceDecode), so that it judges them too.
   */
  canonicalFor?: 'response' | 'request';
}

/** Well-formed pieces. */
export function piecesArb(options: PiecesOptions): fc.Arbitrary<Piece[]> {
  const { depth, inGroup = false, maxPieces = 6, canonicalFor } = options;
  const field = fieldArb(inGroup);
  const pad = canonicalFor ? fc.constant(0) : padArb;
  // At the top level of a canonical message, field 1 only comes with its own wire type.
  const not1 = field.filter((f) => f !== 1);
  const notStatus = canonicalFor && !inGroup ? not1 : field;
  const scalars: fc.Arbitrary<Piece>[] = [
    fc.record({
      kind: fc.constant('varint' as const),
      field: canonicalFor === 'request' && !inGroup ? not1 : field,
      value: valueArb,
      pad,
      tagPad: pad,
    }),
    fc.record({
      kind: fc.constant('fixed' as const),
      field: notStatus,
      bytes: fc.oneof(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.uint8Array({ minLength: 8, maxLength: 8 })),
      tagPad: pad,
    }),
    bytesPieceArb(canonicalFor === 'request' || !canonicalFor || inGroup ? field : not1, pad),
  ];
  const group = () =>
    fc.record({
      kind: fc.constant('group' as const),
      field: notStatus,
      pieces: piecesArb({ depth: depth - 1, inGroup: true, maxPieces: 3, canonicalFor }),
      tagPad: pad,
    });
  const piece = depth === 0 ? fc.oneof(...scalars) : fc.oneof(...scalars, group());
  return fc.array(piece, { maxLength: maxPieces });
}

/** HealthCheckResponse.status as Go decodes these top-level pieces: the last field 1 varint, as int32. */
export function modelStatus(pieces: Piece[]): number {
  let status = 0;
  for (const p of pieces) if (p.kind === 'varint' && p.field === 1) status = Number(BigInt.asIntN(32, p.value));
  return status;
}

/** HealthCheckRequest.service as Go decodes these pieces: 'reject' if any field 1 string is not UTF-8. */
export function modelService(pieces: Piece[]): string | 'reject' {
  let service = '';
  for (const p of pieces) {
    if (p.kind !== 'bytes' || p.field !== 1) continue;
    if (!p.text?.valid) return 'reject';
    service = p.text.text ?? '';
  }
  return service;
}

// ---- malformed inputs: each defect makes Go reject the message once its parse reaches it ----

const wireTypeArb = fc.constantFrom(0, 1, 2, 5);

/** A valid value for a wire type (0, 1, 2, 5), so that only the tag is wrong. */
function valueFor(wireType: number): number[] {
  return wireType === 0 ? [1] : wireType === 1 ? Array(8).fill(0) : wireType === 2 ? [1, 0x61] : Array(4).fill(0);
}

/**
 * One defect, at a place the parse reaches (the top level, or inside a group of field 1..40):
 * varints of 11+ bytes or whose 10th byte is over 1, field 0, a field number too large, wire
 * types 6 and 7, an end-group tag of a field no group is open for (41..80), a group closed by
 * another field, and a length beyond any message the fuzzer builds.
 */
export function defectArb(inGroup: boolean): fc.Arbitrary<number[]> {
  const maxField = inGroup ? MAX_GROUP_FIELD : MAX_FIELD;
  const field = fc.integer({ min: 1, max: 40 });
  const unopened = fc.integer({ min: 41, max: 80 });
  const tooLong = fc.integer({ min: 11, max: 16 }).map((n) => [0x81, ...Array(n - 2).fill(0x80), 0]);
  const overflow = fc.integer({ min: 2, max: 127 }).map((last) => [...Array(9).fill(0xff), last]);
  const hugeLength = fc.oneof(
    fc.bigInt({ min: 1n << 20n, max: U64 }),
    // 2^32 and up with small low 32 bits: only the high half says it is too long
    fc
      .tuple(fc.bigInt({ min: 1n, max: (1n << 32n) - 1n }), fc.integer({ min: 0, max: 3 }))
      .map(([hi, lo]) => (hi << 32n) | BigInt(lo)),
  );
  return fc.oneof(
    fc.tuple(field, fc.oneof(tooLong, overflow)).map(([f, v]) => [...tag(f, 0, 0), ...v]),
    fc.oneof(tooLong, overflow), // as a tag
    fc.tuple(wireTypeArb, padArb).map(([wt, pad]) => [...tag(0, wt, pad), ...valueFor(wt)]),
    fc
      .tuple(fc.integer({ min: maxField + 1, max: Number.MAX_SAFE_INTEGER }), wireTypeArb)
      .map(([f, wt]) => [...varint((BigInt(f) << 3n) | BigInt(wt)), ...valueFor(wt)]),
    fc.tuple(field, fc.constantFrom(6, 7)).map(([f, wt]) => [...tag(f, wt, 0), 0, 0, 0, 0, 0, 0, 0, 0]),
    unopened.map((f) => tag(f, 4, 0)),
    fc.tuple(field, unopened).map(([a, b]) => [...tag(a, 3, 0), ...tag(b, 4, 0)]),
    fc.tuple(field, hugeLength).map(([f, len]) => [...tag(f, 2, 0), ...varint(len), 0x61]),
  );
}

/** Well-formed pieces, then a defect (maybe inside a group), then more pieces: Go rejects it. */
const defectiveArb: fc.Arbitrary<number[]> = fc
  .record({
    before: piecesArb({ depth: 1 }),
    group: fc.option(fc.integer({ min: 1, max: 40 })),
    top: defectArb(false),
    nested: defectArb(true),
    after: piecesArb({ depth: 1 }),
  })
  .map(({ before, group, top, nested, after }) => {
    const defect = group === null ? top : [...tag(group, 3, 0), ...nested, ...tag(group, 4, 0)];
    return [...before.flatMap(encodePiece), ...defect, ...after.flatMap(encodePiece)];
  });

/** Well-formed pieces whose last one is cut short: a truncated varint, fixed field, payload or group. */
const truncatedArb: fc.Arbitrary<number[]> = fc
  .tuple(
    piecesArb({ depth: 1 }),
    piecesArb({ depth: 2, maxPieces: 1 }).filter((p) => p.length === 1),
    fc.nat(),
  )
  .map(([before, [last], cut]) => {
    const tail = encodePiece(last!);
    return [...before.flatMap(encodePiece), ...tail.slice(0, 1 + (cut % (tail.length - 1)))];
  });

/** Bytes with a few bytes overwritten, inserted or removed: near-valid inputs without a model. */
function mutated(base: fc.Arbitrary<number[]>): fc.Arbitrary<number[]> {
  const edit = fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('set', 'insert', 'delete'));
  return fc.tuple(base, fc.array(edit, { minLength: 1, maxLength: 3 })).map(([bytes, edits]) => {
    const out = [...bytes];
    for (const [at, byte, op] of edits) {
      const i = at % (out.length + 1);
      if (op === 'insert') out.splice(i, 0, byte);
      else if (i < out.length && op === 'set') out[i] = byte;
      else if (i < out.length) out.splice(i, 1);
    }
    return out;
  });
}

function inputArb<T>(
  kind: 'response' | 'request',
  model: (pieces: Piece[]) => T | 'reject',
): fc.Arbitrary<FuzzInput<T>> {
  const wellFormed = (canonicalFor?: 'response' | 'request') =>
    piecesArb({ depth: 2, canonicalFor }).map((pieces) => ({
      bytes: Uint8Array.from(pieces.flatMap(encodePiece)),
      expected: model(pieces),
    }));
  const rejected = fc
    .oneof(defectiveArb, truncatedArb)
    .map((b) => ({ bytes: Uint8Array.from(b), expected: 'reject' as const }));
  const unmodelled = fc
    .oneof(
      fc.uint8Array({ maxLength: 48 }).map((b) => [...b]),
      mutated(piecesArb({ depth: 2 }).map((p) => p.flatMap(encodePiece))),
    )
    .map((b) => ({ bytes: Uint8Array.from(b) }));
  return fc.oneof(
    { weight: 2, arbitrary: wellFormed() },
    { weight: 2, arbitrary: wellFormed(kind) },
    { weight: 2, arbitrary: rejected },
    { weight: 2, arbitrary: unmodelled },
  ) as fc.Arbitrary<FuzzInput<T>>;
}

/** Inputs for decodeHealthCheckResponse. */
export const responseInputArb = inputArb('response', (pieces) => ({ status: modelStatus(pieces) }));

/** Inputs for decodeHealthCheckRequest. */
export const requestInputArb = inputArb('request', (pieces) => {
  const service = modelService(pieces);
  return service === 'reject' ? 'reject' : { service };
});

// ---- the reference: protobufjs, watched where it parts from the wire format ----

const root = protobuf.Root.fromJSON({
  nested: {
    HealthCheckRequest: { fields: { service: { type: 'string', id: 1 } } },
    HealthCheckResponse: {
      fields: { status: { type: 'ServingStatus', id: 1 } },
      nested: { ServingStatus: { values: { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 } } },
    },
  },
});
const RequestType = root.lookupType('HealthCheckRequest');
const ResponseType = root.lookupType('HealthCheckResponse');

/** Length of the varint at `at` by its continuation bits (may exceed 10), or undefined if it runs off the end. */
function encodedVarintLength(bytes: Uint8Array, at: number): number | undefined {
  for (let i = at; i < bytes.length; i++) if (bytes[i]! < 0x80) return i - at + 1;
  return undefined;
}

/**
 * Decodes with protobufjs 7 and reports where it read the input otherwise than the wire format
 * (and Go) does, so that the comparison skips those inputs:
 * - Reader.uint32 (tags, lengths, int32 and enum values) takes a varint whose 5th byte continues
 *   to be 10 bytes long and skips 5 more bytes unread: a 6- to 9-byte (non-minimal) varint
 *   leaves it out of step with the message;
 * - a known field is read as its declared type whatever the wire type in its tag.
 * Other differences make protobufjs accept what Go (and the decoder) reject: field 0, 11-byte
 * varints in skipped fields, an end group of another field, a truncated final string. Those need
 * no flag: the comparison is only made where both accept.
 */
export function referenceDecode(
  kind: 'request' | 'response',
  bytes: Uint8Array,
): Decoded<protobuf.Message> & { partsFromWireFormat: string[] } {
  const reader = protobuf.Reader.create(Buffer.from(bytes));
  const partsFromWireFormat: string[] = [];
  let lastVarint = 0;
  const uint32 = reader.uint32;
  reader.uint32 = function (this: protobuf.Reader) {
    const at = this.pos;
    lastVarint = uint32.call(this);
    const encoded = encodedVarintLength(bytes, at);
    if (encoded !== this.pos - at)
      partsFromWireFormat.push(`read ${this.pos - at} bytes of a ${encoded}-byte varint at ${at}`);
    return lastVarint;
  };
  const field1 = kind === 'response' ? 'int32' : 'string';
  const wanted = kind === 'response' ? 0 : 2;
  const read = reader[field1] as () => never;
  reader[field1] = function (this: protobuf.Reader) {
    if ((lastVarint & 7) !== wanted)
      partsFromWireFormat.push(`field 1 with wire type ${lastVarint & 7} read as ${field1}`);
    return read.call(this);
  };
  try {
    const value = (kind === 'response' ? ResponseType : RequestType).decode(reader);
    return { ok: true, value, partsFromWireFormat };
  } catch (err) {
    return { ok: false, error: String(err), partsFromWireFormat };
  }
}

// ---- the properties ----

/** A Buffer that counts reads of its bytes by index (subarray and the like go to the Buffer itself). */
function countingBuffer(bytes: Uint8Array): { buffer: Buffer; reads: () => number } {
  const target = Buffer.from(bytes);
  let reads = 0;
  const buffer = new Proxy(target, {
    get(t, key) {
      if (typeof key === 'string' && /^\d+$/.test(key)) reads++;
      const value = Reflect.get(t, key, t);
      return typeof value === 'function' ? value.bind(t) : value;
    },
  });
  return { buffer, reads: () => reads };
}

/** Runs decode on a counting view of bytes: returns or throws an Error, and reads each byte at most once. */
function decodeChecked<T>(decode: (buf: Buffer) => T, bytes: Uint8Array): Decoded<T> {
  const { buffer, reads } = countingBuffer(bytes);
  let result: Decoded<T>;
  try {
    result = { ok: true, value: decode(buffer) };
  } catch (err) {
    if (!(err instanceof Error)) throw new Error(`threw a non-Error: ${String(err)}`);
    result = { ok: false, error: err.message };
  }
  if (reads() > bytes.length)
    throw new Error(`input ${hex(bytes)}: read ${reads()} bytes of a ${bytes.length}-byte message`);
  return result;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

type Response = { status: number };
type Request = { service: string };

/** Checks one input against the model (if it has one) and protobufjs; throws on a violation. */
function checkInput<T extends Response | Request>(
  kind: 'response' | 'request',
  decode: (buf: Buffer) => T,
  input: FuzzInput<T>,
): void {
  const got = decodeChecked(decode, input.bytes);
  const at = `input ${hex(input.bytes)}: decoder ${JSON.stringify(got)}`;
  const same = (a: T, b: T) => JSON.stringify(a) === JSON.stringify(b);
  if (got.ok && 'status' in got.value && got.value.status !== (got.value.status | 0))
    throw new Error(`${at}: status is not an int32`);
  if (input.expected === 'reject' && got.ok) throw new Error(`${at}, Go rejects it`);
  if (input.expected !== undefined && input.expected !== 'reject' && !(got.ok && same(got.value, input.expected)))
    throw new Error(`${at}, Go decodes ${JSON.stringify(input.expected)}`);
  const ref = referenceDecode(kind, input.bytes);
  if (got.ok && ref.ok && ref.partsFromWireFormat.length === 0) {
    const m = ref.value as unknown as Response & Request; // defaults live on the prototype
    const theirs = (kind === 'response' ? { status: m.status } : { service: m.service }) as T;
    if (!same(theirs, got.value)) throw new Error(`${at}, protobufjs decodes ${JSON.stringify(theirs)}`);
  }
}

/** Checks one response input (see grpcHealthDecoderProperty); throws on a violation. */
export function checkResponseInput(input: FuzzInput<Response>): void {
  checkInput('response', decodeHealthCheckResponse, input);
}

/** Checks one request input (see grpcHealthRequestDecoderProperty); throws on a violation. */
export function checkRequestInput(input: FuzzInput<Request>): void {
  checkInput('request', decodeHealthCheckRequest, input);
}

/**
 * decodeHealthCheckResponse on random, mutated, well-formed and malformed messages: it returns an
 * int32 status or throws an Error, reads each byte at most once, decodes what Go decodes on every
 * modelled input, and agrees with protobufjs wherever both accept. Run with fc.assert(p, { numRuns }).
 */
export function grpcHealthDecoderProperty(): fc.IPropertyWithHooks<[FuzzInput<Response>]> {
  return fc.property(responseInputArb, checkResponseInput);
}

/** The same for decodeHealthCheckRequest (the service name a gRPC server reads). */
export function grpcHealthRequestDecoderProperty(): fc.IPropertyWithHooks<[FuzzInput<Request>]> {
  return fc.property(requestInputArb, checkRequestInput);
}

// Property-based fuzzing of the grpc.health.v1 decoders: the properties and the input
// generators are in test/fuzz/health-proto.ts (shared with the long run, bench/fuzz.ts); the runs
// here are bounded to keep the file fast. A failure prints the input's hex and fast-check's seed.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeHealthCheckRequest, decodeHealthCheckResponse } from '../../../src/probes/health-proto.ts';
import {
  checkRequestInput,
  checkResponseInput,
  grpcHealthDecoderProperty,
  grpcHealthRequestDecoderProperty,
  referenceDecode,
  requestInputArb,
  responseInputArb,
} from '../../fuzz/health-proto.ts';

describe('health.proto decoders, fuzzed', () => {
  it('decodeHealthCheckResponse: an int32 or an Error, each byte read once, as Go and protobufjs decode', () => {
    fc.assert(grpcHealthDecoderProperty(), { numRuns: 3000 });
  });

  it('decodeHealthCheckRequest: a string or an Error, each byte read once, as Go and protobufjs decode', () => {
    fc.assert(grpcHealthRequestDecoderProperty(), { numRuns: 2000 });
  });

  it('a 64 KiB message (the probe’s limit) of nested groups and fields is read once through', () => {
    const groups = `${'0b'.repeat(10_001)}${'0c'.repeat(10_001)}`;
    const fields = '1200'.repeat((64 * 1024 - groups.length / 2 - 2) / 2);
    const bytes = Buffer.from(`${groups}${fields}0801`, 'hex');
    expect(bytes.length).toBe(64 * 1024);
    checkResponseInput({ bytes, expected: { status: 1 } });
    checkResponseInput({ bytes: Buffer.from(`0b${groups}0c`, 'hex'), expected: 'reject' });
    checkRequestInput({ bytes, expected: { service: '' } });
  });

  it('the oracles are not idle: every kind of input comes up, and protobufjs judges a quarter or more', () => {
    for (const [kind, arb] of [
      ['response', responseInputArb],
      ['request', requestInputArb],
    ] as const) {
      const seen = { value: 0, reject: 0, unmodelled: 0, comparedWithProtobufjs: 0 };
      const inputs = fc.sample(arb as fc.Arbitrary<{ bytes: Uint8Array; expected?: unknown }>, 1000);
      for (const { bytes, expected } of inputs) {
        seen[expected === undefined ? 'unmodelled' : expected === 'reject' ? 'reject' : 'value']++;
        const ref = referenceDecode(kind, bytes);
        const decode = kind === 'response' ? decodeHealthCheckResponse : decodeHealthCheckRequest;
        if (ref.ok && ref.partsFromWireFormat.length === 0 && accepts(decode, bytes)) seen.comparedWithProtobufjs++;
      }
      expect(seen.value, kind).toBeGreaterThan(200);
      expect(seen.reject, kind).toBeGreaterThan(100);
      expect(seen.unmodelled, kind).toBeGreaterThan(100);
      expect(seen.comparedWithProtobufjs, kind).toBeGreaterThan(250);
    }
  });

  it('protobufjs is caught where it reads otherwise than the wire format, and only there', () => {
    // 1 in 6 bytes, then status 2: protobufjs reads 10 bytes and skips the second status
    expect(referenceDecode('response', Buffer.from('08818080808000080218000000', 'hex')).partsFromWireFormat).toEqual([
      'read 10 bytes of a 6-byte varint at 1',
    ]);
    // field 1 as bytes holding 5: protobufjs reads the length as the status
    expect(referenceDecode('response', Buffer.from('0a0105', 'hex')).partsFromWireFormat).toEqual([
      'field 1 with wire type 2 read as int32',
    ]);
    expect(referenceDecode('request', Buffer.from('0861', 'hex')).partsFromWireFormat).toEqual([
      'field 1 with wire type 0 read as string',
    ]);
    const plain = referenceDecode('response', Buffer.from('13fa01001408ffffffffffffffffff01', 'hex'));
    expect(plain).toMatchObject({ ok: true, value: { status: -1 }, partsFromWireFormat: [] });
  });
});

function accepts(decode: (buf: Buffer) => unknown, bytes: Uint8Array): boolean {
  try {
    decode(Buffer.from(bytes));
    return true;
  } catch {
    return false;
  }
}

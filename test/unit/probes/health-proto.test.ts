// grpc.health.v1 messages decoded as the kubelet decodes them. Every expectation below is what
// google.golang.org/protobuf (the version in tools/kube/go.mod) proto.Unmarshal made of the same
// bytes into grpc_health_v1.HealthCheckResponse or HealthCheckRequest: a value, or an error
// ('reject').
import { describe, expect, it } from 'vitest';
import {
  decodeHealthCheckRequest,
  decodeHealthCheckResponse,
  encodeHealthCheckResponse,
} from '../../../src/probes/health-proto.ts';

const nested = (depth: number) => `${'0b'.repeat(depth)}${'0c'.repeat(depth)}0801`;

const responses: [string, string, number | 'reject'][] = [
  // the status is an int32: only the low 32 bits of the varint count, negative values are 10 bytes
  ['2^32 + 1 is SERVING', '088180808010', 1],
  ['2^32 is UNKNOWN', '088080808010', 0],
  ['2^31 is the least int32', '088080808008', -2147483648],
  ['2^32 - 1 is -1', '08ffffffff0f', -1],
  ['2^64 - 1 is -1', '08ffffffffffffffffff01', -1],
  ['2^64 - 2 is -2', '08feffffffffffffffff01', -2],
  ['2^53 + 1 is 1', '088180808080808010', 1],
  ['2^63 is 0', '0880808080808080808001', 0],
  ['1 in 6 bytes (not minimal)', '08818080808000', 1],
  ['1 in 10 bytes', '0881808080808080808000', 1],
  ['the last status wins', '08818080801008020801', 1],
  // a varint holds 64 bits at most: a 10th byte over 1 is an error, wherever the varint is
  ['a status with a 10th byte of 2', '08ffffffffffffffffff02', 'reject'],
  ['a status with a 10th byte of 0x7f', '08ffffffffffffffffff7f', 'reject'],
  ['a status of 11 bytes', '08ffffffffffffffffff8100', 'reject'],
  ['an unknown varint field with a 10th byte of 2', '10ffffffffffffffffff020801', 'reject'],
  ['a varint with a 10th byte of 2 inside a group', '0b08ffffffffffffffffff020c', 'reject'],
  // lengths and fixed-width fields must fit in what is left
  ['a length of 2^32 (its low 32 bits 0)', '1280808080100801', 'reject'],
  ['a length of 2^64 - 1', '12ffffffffffffffffff010801', 'reject'],
  ['a fixed64 cut short', '1100000000000000', 'reject'],
  ['a fixed32 cut short', '15000000', 'reject'],
  ['bytes cut short', '120361', 'reject'],
  // field numbers are 1..2^29 - 1, and inside a skipped group 1..2^31 - 1
  ['field 2^29 - 1', 'f8ffffff0f000801', 1],
  ['field 2^29', '8080808010000801', 'reject'],
  ['a group of field 2^29', '838080801084808080100801', 'reject'],
  ['field 2^61 - 1', 'f8ffffffffffffffff0100', 'reject'],
  ['field 2^29 inside a group', '0b8080808010000c0801', 1],
  ['field 2^31 - 1 inside a group', '0bf8ffffff3f000c0801', 1],
  ['a group of field 2^31 - 1 inside a group', '0bfbffffff3ffcffffff3f0c0801', 1],
  ['field 2^31 inside a group', '0b8080808040000c0801', 'reject'],
  ['field 0, a varint', '0000', 'reject'],
  ['field 0, empty bytes', '0200', 'reject'],
  ['field 0, a fixed32', '0500000000', 'reject'],
  ['field 0 inside a group', '0b00000c0801', 'reject'],
  // groups (wire types 3 and 4) are skipped up to their own end-group tag, 10,001 deep
  ['an empty group before the status', '0b0c0801', 1],
  ['a group inside a group, then the status', '130b0c140802', 2],
  ['a group of field 1 is not the status', '0b08010c', 0],
  ['a group closed by another field', '130b140c', 'reject'],
  ['an end-group tag outside any group', '0c', 'reject'],
  ['a group never closed', '0b0801', 'reject'],
  ['groups nested 10,001 deep', nested(10_001), 1],
  ['groups nested 10,002 deep', nested(10_002), 'reject'],
];

describe('decodeHealthCheckResponse, as Go decodes HealthCheckResponse', () => {
  it.each(responses)('%s', (_, hex, expected) => {
    const decode = () => decodeHealthCheckResponse(Buffer.from(hex, 'hex'));
    if (expected === 'reject') expect(decode).toThrow(Error);
    else expect(decode()).toEqual({ status: expected });
  });
});

const requests: [string, string, string | 'reject'][] = [
  ['a service name', '0a0161', 'a'],
  ['an emoji', '0a04f09f9880', '\u{1f600}'],
  ['a BOM is kept', '0a03efbbbf', '\ufeff'],
  ['field 1 as a varint is skipped', '0801', ''],
  ['a fixed32 of field 1, then a name', '0d000000000a0162', 'b'],
  ['other fields are not UTF-8 checked', '0a0161120180', 'a'],
  // proto3 strings must be UTF-8, in every occurrence of the field
  ['a lone continuation byte', '0a0180', 'reject'],
  ['0xff, then a valid name', '0a01ff0a0161', 'reject'],
  ['a surrogate', '0a03eda080', 'reject'],
  ['an overlong "/"', '0a02c0af', 'reject'],
  ['above U+10FFFF', '0a04f4908080', 'reject'],
  ['a truncated name', '0a0280', 'reject'],
];

describe('decodeHealthCheckRequest, as Go decodes HealthCheckRequest', () => {
  it.each(requests)('%s', (_, hex, expected) => {
    const decode = () => decodeHealthCheckRequest(Buffer.from(hex, 'hex'));
    if (expected === 'reject') expect(decode).toThrow(Error);
    else expect(decode()).toEqual({ service: expected });
  });
});

describe('encodeHealthCheckResponse', () => {
  it('sends a negative status as Go does (sign-extended, 10 bytes) and reads it back', () => {
    expect(encodeHealthCheckResponse({ status: -1 }).toString('hex')).toBe('08ffffffffffffffffff01');
    for (const status of [-1, -2, -(2 ** 31), 2 ** 31 - 1])
      expect(decodeHealthCheckResponse(encodeHealthCheckResponse({ status }))).toEqual({ status });
  });
});

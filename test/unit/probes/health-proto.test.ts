// grpc.health.v1 messages decoded as the kubelet decodes them. Every expectation below is what
// google.golang.org/protobuf (the version in tools/kube/go.mod) proto.Unmarshal made of the same
// bytes into grpc_health_v1.HealthCheckResponse: a status, or an error ('reject').
import { describe, expect, it } from 'vitest';
import { decodeHealthCheckResponse } from '../../../src/probes/health-proto.ts';

const nested = (depth: number) => `${'0b'.repeat(depth)}${'0c'.repeat(depth)}0801`;

const responses: [string, string, number | 'reject'][] = [
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

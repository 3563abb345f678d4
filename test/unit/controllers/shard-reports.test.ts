// What sharded replicas tell the status writer (src/controllers/shard-reports.ts).
import { describe, expect, it } from 'vitest';
import {
  decodeReport,
  encodeReport,
  MAX_REPORT_BYTES,
  MAX_REPORTED_POLICIES,
  PeerReports,
} from '../../../src/controllers/shard-reports.ts';

describe('shard reports', () => {
  it('round-trips, Failsafe first, and carries no counts (it changes only with a hold or the stretch)', () => {
    const text = encodeReport(
      2.5,
      new Map([
        ['shop/b', 'CouldNotLook'],
        ['shop/a', 'Failsafe'],
      ]),
    );
    expect(text).toBe('{"stretch":2.5,"held":{"shop/a":"Failsafe","shop/b":"CouldNotLook"}}');
    expect(decodeReport(text)).toEqual({ stretch: 2.5, held: { 'shop/a': 'Failsafe', 'shop/b': 'CouldNotLook' } });
  });

  it('keeps at most 200 policies and at most 16 KiB, saying how many it left out', () => {
    const many = new Map<string, 'Failsafe' | 'CouldNotLook'>(
      Array.from({ length: 250 }, (_, i) => [`ns/p${i}`, 'CouldNotLook' as const]),
    );
    many.set('ns/zz', 'Failsafe');
    const report = decodeReport(encodeReport(1, many))!;
    expect(Object.keys(report.held)).toHaveLength(MAX_REPORTED_POLICIES);
    expect(report.held['ns/zz']).toBe('Failsafe');
    expect(report.more).toBe(51);
    const long = new Map(
      Array.from({ length: 150 }, (_, i) => [`${'n'.repeat(60)}/${'p'.repeat(60)}${i}`, 'Failsafe' as const]),
    );
    const text = encodeReport(3, long);
    expect(text.length).toBeLessThanOrEqual(MAX_REPORT_BYTES);
    expect(decodeReport(text)).toEqual({ stretch: 3, held: {}, more: 150 });
  });

  it.each([
    undefined,
    '',
    'not json',
    'null',
    '{"held":{}}',
    '{"stretch":0.5,"held":{}}',
    'x'.repeat(MAX_REPORT_BYTES + 1),
  ])('reads %j as no report', (text) => expect(decodeReport(text)).toBeUndefined());

  it('drops unknown reasons from a report', () => {
    expect(decodeReport('{"stretch":1,"held":{"a/b":"Bogus","a/c":"Failsafe"}}')).toEqual({
      stretch: 1,
      held: { 'a/c': 'Failsafe' },
    });
  });
});

describe('PeerReports', () => {
  const report = (stretch: number, held: Record<string, 'Failsafe' | 'CouldNotLook'> = {}) => ({ stretch, held });

  it("merges the other live replicas' holds (Failsafe before CouldNotLook) and the largest stretch", () => {
    const peers = new PeerReports();
    const first = peers.update('rg-0', [
      { identity: 'rg-0', report: report(9, { 'shop/a': 'Failsafe' }) }, // its own: not a peer
      { identity: 'rg-1', report: report(1, { 'shop/a': 'CouldNotLook' }) },
      { identity: 'rg-2', report: report(3, { 'shop/a': 'Failsafe', 'shop/b': 'CouldNotLook' }) },
    ]);
    expect(first.changed.sort()).toEqual(['shop/a', 'shop/b']);
    expect(first.stretchChanged).toBe(true);
    expect(peers.stretch()).toBe(3);
    expect(peers.failsafe('shop/a')).toMatchObject({
      reason: 'Failsafe',
      message: expect.stringContaining('replica rg-2 '),
    });
    expect(peers.failsafe('shop/b')?.reason).toBe('CouldNotLook');
    expect(peers.failsafe('shop/c')).toBeUndefined();
  });

  it('reports only what changed; a replica that leaves takes its holds with it', () => {
    const peers = new PeerReports();
    peers.update('rg-0', [{ identity: 'rg-1', report: report(2, { 'shop/a': 'Failsafe' }) }]);
    expect(peers.update('rg-0', [{ identity: 'rg-1', report: report(2, { 'shop/a': 'Failsafe' }) }])).toEqual({
      changed: [],
      stretchChanged: false,
    });
    expect(peers.update('rg-0', [{ identity: 'rg-2', report: undefined }])).toEqual({
      changed: ['shop/a'],
      stretchChanged: true,
    });
    expect(peers.failsafe('shop/a')).toBeUndefined();
    expect(peers.stretch()).toBe(1);
  });
});

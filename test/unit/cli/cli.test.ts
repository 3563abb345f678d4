import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { ProbePolicy } from '../../../src/api/types.ts';
import { explainPod, formatExplanation } from '../../../src/cli/explain.ts';
import { parseDuration, parseRunOptions, UsageError } from '../../../src/cli/options.ts';

describe('run options', () => {
  it('has safe defaults', () => {
    const o = parseRunOptions([], {});
    expect(o).toMatchObject({
      namespaces: [],
      leaderElect: false,
      healthHost: '127.0.0.1',
      healthPort: 8081,
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      enableExec: false,
      allowSecretCa: false,
      memorySaver: true,
    });
    expect(parseRunOptions(['--no-memory-saver'], {}).memorySaver).toBe(false);
  });
  it('reads flags and environment', () => {
    const o = parseRunOptions(
      ['--namespaces', 'a, b', '--health-addr', '0.0.0.0:9000', '--leader-elect', '--lease-duration', '30s'],
      { POD_NAMESPACE: 'ops', POD_NAME: 'rg-0' },
    );
    expect(o).toMatchObject({
      namespaces: ['a', 'b'],
      healthHost: '0.0.0.0',
      healthPort: 9000,
      leaderElect: true,
      leaderElectionNamespace: 'ops',
      identity: 'rg-0',
      leaseDurationMs: 30_000,
    });
  });
  it.each([
    [['--workers', '0'], '--workers'],
    [['--log-level', 'loud'], '--log-level'],
    [['--namespaces', 'Bad_NS'], 'invalid namespace'],
    [['--health-addr', 'nowhere'], '--health-addr'],
    [['--renew-deadline', '20s'], 'retry-period < renew-deadline < lease-duration'],
    [['--resync', 'soon'], 'invalid duration'],
    [['--frobnicate'], 'Unknown option'],
  ])('rejects %j naming the flag', (args, words) => {
    expect(() => parseRunOptions(args, {})).toThrow(UsageError);
    expect(() => parseRunOptions(args, {})).toThrow(words);
  });
  it('parses durations', () => {
    expect(parseDuration('x', '1500ms')).toBe(1500);
    expect(parseDuration('x', '2m')).toBe(120_000);
    expect(parseDuration('x', '3')).toBe(3000);
  });
});

describe('explainPod', () => {
  const GATE = 'readygate.dev/db';
  const now = Date.UTC(2026, 10, 27, 6, 0, 0);
  const policy = (name: string, app: string): ProbePolicy => ({
    metadata: { name, namespace: 'shop', uid: name, creationTimestamp: '2026-01-01T00:00:00Z' as never },
    spec: { conditionType: GATE, selector: { matchLabels: { app } }, probe: { tcpSocket: { port: 1 } } },
  });
  const pod = (conditions: object[], gates = [GATE]): V1Pod => ({
    metadata: { name: 'db-0', namespace: 'shop', labels: { app: 'db' } },
    spec: { containers: [], readinessGates: gates.map((conditionType) => ({ conditionType })) },
    status: { podIP: '127.0.0.5', conditions: conditions as never },
  });
  it('says which gate blocks and why', () => {
    const e = explainPod(
      pod([
        { type: 'ContainersReady', status: 'True' },
        { type: 'Ready', status: 'False' },
        {
          type: GATE,
          status: 'False',
          reason: 'ProbeFailed',
          message: 'TCP refused',
          lastTransitionTime: new Date(now - 90_000),
        },
      ]),
      [policy('db', 'db')],
      now,
    );
    expect(e.summary).toBe(`Not Ready: blocked by ${GATE}.`);
    expect(e.gates[0]).toMatchObject({ policy: 'db', status: 'False', blocking: true, since: '90s ago' });
    expect(formatExplanation(e)).toContain('policy db reports ProbeFailed: TCP refused');
  });
  it('explains a gate nobody provides, and a selector that misses', () => {
    const none = explainPod(pod([{ type: 'ContainersReady', status: 'True' }]), [], now);
    expect(none.gates[0]?.why).toContain(`no ProbePolicy in namespace shop provides ${GATE}`);
    const miss = explainPod(pod([{ type: 'ContainersReady', status: 'True' }]), [policy('web', 'web')], now);
    expect(miss.gates[0]?.why).toContain('none selects this pod');
  });
  it('puts containers before gates', () => {
    const e = explainPod(pod([{ type: 'ContainersReady', status: 'False' }]), [policy('db', 'db')], now);
    expect(e.summary).toContain('the containers themselves are not ready');
  });
});

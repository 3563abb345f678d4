import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { ProbePolicy } from '../../../src/api/types.ts';
import { explainPod, explanationJson, formatExplanation, rfc3339 } from '../../../src/cli/explain.ts';
import { parseDuration, parseRunOptions, shardLeaseId, UsageError } from '../../../src/cli/options.ts';
import { printable, printableJson } from '../../../src/cli/terminal.ts';

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
      workers: 4,
      podWorkers: 32,
      maxPeriodStretch: 10,
      releaseOrphanedGatesAfterMs: 60_000,
    });
    expect(parseRunOptions(['--no-memory-saver'], {}).memorySaver).toBe(false);
  });
  it('releases orphaned gates after the given grace; 0 keeps conditions as they are', () => {
    const grace = (v: string) => parseRunOptions(['--release-orphaned-gates-after', v], {}).releaseOrphanedGatesAfterMs;
    expect(grace('2s')).toBe(2_000);
    expect(grace('5m')).toBe(300_000);
    expect(grace('0')).toBe(0);
    expect(grace('0s')).toBe(0);
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
    [['--pod-workers', '0'], '--pod-workers'],
    [['--max-period-stretch', '0'], '--max-period-stretch'],
    [['--max-period-stretch', '1000'], '--max-period-stretch'],
    [['--log-level', 'loud'], '--log-level'],
    [['--log-format', 'pretty'], '--log-format: must be json or text'],
    [['--namespaces', 'Bad_NS'], 'invalid namespace'],
    [['--health-addr', 'nowhere'], '--health-addr'],
    [['--renew-deadline', '20s'], 'retry-period < renew-deadline < lease-duration'],
    [['--resync', 'soon'], 'invalid duration'],
    [['--release-orphaned-gates-after', 'never'], '--release-orphaned-gates-after: invalid duration'],
    [['--frobnicate'], 'Unknown option'],
  ])('rejects %j naming the flag', (args, words) => {
    expect(() => parseRunOptions(args, {})).toThrow(UsageError);
    expect(() => parseRunOptions(args, {})).toThrow(words);
  });
  it('logs JSON unless --log-format or LOG_FORMAT says text', () => {
    expect(parseRunOptions([], {}).logFormat).toBe('json');
    expect(parseRunOptions(['--log-format', 'text'], {}).logFormat).toBe('text');
    expect(parseRunOptions([], { LOG_FORMAT: 'text' }).logFormat).toBe('text');
    expect(parseRunOptions(['--log-format', 'json'], { LOG_FORMAT: 'text' }).logFormat).toBe('json');
  });
  it('shards only with leader election and a stable identity', () => {
    expect(parseRunOptions([], {}).shardBuckets).toBe(0);
    const o = parseRunOptions(['--leader-elect', '--shard-buckets', '16'], { POD_NAME: 'rg-0' });
    expect(o.shardBuckets).toBe(16);
    expect(shardLeaseId(o)).toBe('readygate-s16');
    expect(parseRunOptions(['--shard-buckets', '0'], {}).shardBuckets).toBe(0);
    const rejects = (args: string[], env: NodeJS.ProcessEnv, words: string) => {
      expect(() => parseRunOptions(args, env)).toThrow(UsageError);
      expect(() => parseRunOptions(args, env)).toThrow(words);
    };
    rejects(['--shard-buckets', '16'], { POD_NAME: 'rg-0' }, 'needs --leader-elect');
    rejects(['--leader-elect', '--shard-buckets', '16'], {}, 'needs POD_NAME');
    rejects(['--leader-elect', '--shard-buckets', '257'], { POD_NAME: 'a' }, 'from 1 to 256');
    rejects(['--leader-elect', '--shard-buckets', '-1'], { POD_NAME: 'a' }, '--shard-buckets');
    rejects(
      ['--leader-elect', '--shard-buckets', '16', '--leader-election-id', 'x'.repeat(50)],
      { POD_NAME: 'a' },
      'too long',
    );
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
    expect(formatExplanation(e)).toContain(`gate ${GATE}: False for 90s\n`);
    // -o json: the instant, not the words; nothing else changes.
    const json = JSON.parse(printableJson(explanationJson(e))) as { gates: Record<string, unknown>[] };
    expect(json.gates[0]).toEqual({
      conditionType: GATE,
      policy: 'db',
      status: 'False',
      reason: 'ProbeFailed',
      message: 'TCP refused',
      since: '2026-11-27T05:58:30Z',
      probes: 'every 10s',
      blocking: true,
      why: 'policy db reports ProbeFailed: TCP refused',
    });
  });
  it('writes API times as RFC 3339 in UTC, and nothing for none', () => {
    expect(rfc3339('2026-11-27T07:58:30+02:00')).toBe('2026-11-27T05:58:30Z');
    expect(rfc3339(new Date(Date.UTC(2026, 10, 27, 5, 58, 30, 250)))).toBe('2026-11-27T05:58:30.250Z');
    expect(rfc3339('2026-11-27T05:58:30.123456Z')).toBe('2026-11-27T05:58:30.123Z');
    expect(rfc3339(undefined)).toBeUndefined();
    expect(rfc3339('not a time')).toBeUndefined();
  });
  it("states the probes' period, stretched when the operator is overloaded", () => {
    const conditions = [{ type: 'ContainersReady', status: 'True' }];
    const calm = explainPod(pod(conditions), [policy('db', 'db')], now);
    expect(calm.gates[0]?.probes).toBe('every 10s');
    const busy = { ...policy('db', 'db'), status: { effectivePeriodSeconds: 24 } };
    const e = explainPod(pod(conditions), [busy], now);
    expect(e.gates[0]?.probes).toContain('every 24s while the gate is settled (periodSeconds 10s');
    expect(e.gates[0]?.probes).toContain('every 10s while it is new or changing');
    expect(formatExplanation(e)).toContain('probes:  every 24s');
  });
  it('explains a gate nobody provides, and a selector that misses', () => {
    const none = explainPod(pod([{ type: 'ContainersReady', status: 'True' }]), [], now);
    expect(none.gates[0]?.why).toContain(`no ProbePolicy in namespace shop provides ${GATE}`);
    const miss = explainPod(pod([{ type: 'ContainersReady', status: 'True' }]), [policy('web', 'web')], now);
    expect(miss.gates[0]?.why).toContain('none selects this pod');
  });
  describe('a policy that selects the pod but whose gate the pod does not list', () => {
    const GATE_WEB = 'readygate.dev/web';
    const ready = [
      { type: 'ContainersReady', status: 'True' },
      { type: 'Ready', status: 'True' },
    ];
    const owned = (
      p: V1Pod,
      kind: string,
      name: string,
      apiVersion = 'apps/v1',
      labels: Record<string, string> = {},
    ) => {
      p.metadata = {
        ...p.metadata,
        labels: { ...p.metadata?.labels, ...labels },
        ownerReferences: [{ apiVersion, kind, name, uid: 'rs', controller: true }],
      };
      return p;
    };
    const webPolicy = (injection?: 'Disabled') => ({
      ...policy('web-deps', 'db'),
      spec: { ...policy('web-deps', 'db').spec, conditionType: GATE_WEB, ...(injection ? { injection } : {}) },
    });

    it('says so in plain words, with the command that recreates the pod with the gate', () => {
      const p = owned(pod(ready), 'ReplicaSet', 'web-7d9f5c', 'apps/v1', { 'pod-template-hash': '7d9f5c' });
      const e = explainPod(p, [policy('db', 'db'), webPolicy()], now);
      expect(e.ready).toBe(true);
      expect(e.notGated).toEqual([
        {
          policy: 'web-deps',
          conditionType: GATE_WEB,
          injection: 'Enabled',
          workload: 'deployment/web',
          why: `ProbePolicy web-deps selects this pod, but the pod does not list ${GATE_WEB} in spec.readinessGates (it was created before gate injection covered it, or its namespace opts out), so readygate does not gate it: kubectl rollout restart deployment/web -n shop`,
        },
      ]);
      expect(e.summary).toBe(
        'Ready: containers are ready and every readiness gate is True. Not gated by ProbePolicy web-deps, which selects it.',
      );
      const text = formatExplanation(e);
      expect(text).toContain(
        `  not gated: ProbePolicy web-deps selects this pod, but the pod does not list ${GATE_WEB}`,
      );
      expect(text).toContain('kubectl rollout restart deployment/web -n shop\n');
    });

    it('tells a StatefulSet, a Job and a bare pod apart', () => {
      const why = (p: V1Pod) => explainPod(p, [webPolicy()], now).notGated[0]?.why;
      expect(why(owned(pod(ready, []), 'StatefulSet', 'db'))).toMatch(
        /: kubectl rollout restart statefulset\/db -n shop$/,
      );
      expect(why(owned(pod(ready, []), 'Job', 'migrate', 'batch/v1'))).toMatch(
        /: delete and recreate job\/migrate in namespace shop$/,
      );
      expect(why(pod(ready, []))).toMatch(/: delete and recreate the pod \(kubectl delete pod\/db-0 -n shop, then/);
      const bare = explainPod(pod(ready, []), [webPolicy()], now);
      expect(formatExplanation(bare)).toContain('The pod has no readiness gates; readygate does not affect it.');
      expect(bare.notGated[0]?.workload).toBe('pod/db-0');
    });

    it('says the policy has injection Disabled, and leaves out policies that do not select the pod', () => {
      const e = explainPod(
        pod(ready),
        [
          webPolicy('Disabled'),
          { ...policy('other', 'web'), spec: { ...policy('other', 'web').spec, conditionType: 'readygate.dev/x' } },
        ],
        now,
      );
      expect(e.notGated).toHaveLength(1);
      expect(e.notGated[0]).toMatchObject({ policy: 'web-deps', injection: 'Disabled' });
      expect(e.notGated[0]?.why).toContain("the policy's spec.injection is Disabled (pods opt in)");
      expect(e.notGated[0]?.why).toContain(`list ${GATE_WEB} in the readinessGates of the pod's template`);
    });

    it('says nothing when every selecting policy is among the gates', () => {
      const e = explainPod(pod(ready), [policy('db', 'db')], now);
      expect(e.notGated).toEqual([]);
      expect(e.summary).toBe('Ready: containers are ready and every readiness gate is True.');
      expect(formatExplanation(e)).not.toContain('not gated');
    });
  });

  it('puts containers before gates', () => {
    const e = explainPod(pod([{ type: 'ContainersReady', status: 'False' }]), [policy('db', 'db')], now);
    expect(e.summary).toContain('the containers themselves are not ready');
  });

  describe('text from the cluster reaches the terminal escaped', () => {
    // Set the window title, clear the screen, CSI in its one-byte C1 form, DEL, a right-to-left
    // override, and a newline that would forge a line of output.
    const EVIL = '\u001b]0;pwned\u0007\u001b[2J\u009b31m\u007f\u202e\n    ok:   passing';
    const hostile = (): ReturnType<typeof explainPod> =>
      explainPod(
        pod([
          { type: 'ContainersReady', status: 'True' },
          { type: GATE, status: `False${EVIL}`, reason: `ProbeFailed${EVIL}`, message: `HTTP GET${EVIL}` },
        ]),
        [policy(`db${EVIL}`, 'db')],
        now,
      );

    it('in the text output: no control characters but the line ends, each escape visible', () => {
      const out = formatExplanation(hostile());
      const lines = out.split('\n');
      expect(lines.pop()).toBe('');
      for (const line of lines) expect(line).not.toMatch(/[\p{Cc}\u202e]/u);
      expect(out).toContain('HTTP GET\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m\\x7f\\u202e\\x0a    ok:   passing');
      expect(out).toContain('policy:  db\\x1b]0;pwned');
      // The forged "ok: passing" stays inside its own line.
      expect(lines.filter((l) => l.trimStart().startsWith('ok:'))).toHaveLength(0);
    });

    it('in JSON: the same strings, with DEL, C1 and bidi controls escaped too', () => {
      const e = hostile();
      const json = printableJson(e);
      // Only the newlines of the pretty-printing remain.
      expect(json.replaceAll('\n', '')).not.toMatch(/[\p{Cc}\u202e]/u);
      expect(JSON.parse(json)).toEqual(JSON.parse(JSON.stringify(e)));
    });

    it('printable leaves ordinary text alone', () => {
      expect(printable('HTTP GET http://10.0.0.1:8080/ready: 503 — ünïcode ✓')).toBe(
        'HTTP GET http://10.0.0.1:8080/ready: 503 — ünïcode ✓',
      );
      expect(printable('a\tb\r\nc\u2028d')).toBe('a\\x09b\\x0d\\x0ac\\u2028d');
    });
  });
});

// values.schema.json and the chart's cross-field checks refuse bad values at install time, with a
// message that names the offending value.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRunOptions } from '../../../src/cli/options.ts';
import { helm, one, render, templateArgs, toolsDir } from './helm.ts';

let dir: string;
beforeAll(() => {
  toolsDir();
  dir = mkdtempSync(join(tmpdir(), 'readygate-chart-'));
}, 900_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Renders with --set values and returns helm's error output (failing if helm succeeded). */
function setRejection(set: string[]): string {
  const r = helm(templateArgs(set));
  expect(r.status, `helm accepted --set ${set.join(' --set ')}`).not.toBe(0);
  return r.stderr;
}

/** The message of a template's `fail`: helm prints it after the template's position, then a newline. */
const failure = (message: string) => `): ${message}\n`;

/** Renders a values file holding yamlText and returns helm's error output (failing if helm succeeded). */
function rejection(yamlText: string): string {
  const file = join(dir, `values-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, yamlText);
  const r = helm(templateArgs([], ['-f', file]));
  expect(r.status, `helm accepted:\n${yamlText}`).not.toBe(0);
  return r.stderr;
}

describe('bad values are rejected with a message naming the value', () => {
  const cases: [string, string, RegExp][] = [
    ['negative replicas', 'replicaCount: -1', /\/replicaCount'?: minimum: got -1, want 0/],
    ['too many replicas', 'replicaCount: 50', /\/replicaCount'?: maximum/],
    ['unknown log level', 'logLevel: loud', /\/logLevel'?: value must be one of 'fatal', 'error', 'warn', 'info'/],
    ['invalid namespace name', 'watchNamespaces: [Shop]', /\/watchNamespaces\/0'?: 'Shop' does not match pattern/],
    ['duplicate namespace', 'watchNamespaces: [a, a]', /\/watchNamespaces'?: items at 0 and 1 are equal/],
    ['a typo in a key', 'replicas: 2', /additional properties 'replicas' not allowed/],
    ['a typo in a nested key', 'exec: {enable: true}', /\/exec'?: additional properties 'enable' not allowed/],
    ['exec.enabled as a string', 'exec: {enabled: "yes"}', /\/exec\/enabled'?: got string, want boolean/],
    [
      'duration without a unit',
      'leaderElection: {leaseDuration: "15"}',
      /\/leaderElection\/leaseDuration'?: '15' does not match/,
    ],
    ['privileged health port', 'healthPort: 80', /\/healthPort'?: minimum: got 80, want 1,?024/],
    ['bad pull policy', 'image: {pullPolicy: Sometimes}', /\/image\/pullPolicy'?: value must be one of/],
    ['bad digest', 'image: {digest: "latest"}', /\/image\/digest'?: 'latest' does not match pattern/],
    [
      'bad anti-affinity mode',
      'podAntiAffinity: strict',
      /\/podAntiAffinity'?: value must be one of 'soft', 'hard', 'none'/,
    ],
    [
      'bad CIDR',
      'networkPolicy: {apiServer: {cidrs: ["10.0.0.1"]}}',
      /\/networkPolicy\/apiServer\/cidrs\/0'?: '10.0.0.1' does not match/,
    ],
    [
      'a condition prefix without a slash (it would admit readygate.devil.example/x)',
      'conditions: {allowedPrefixes: ["readygate.dev"]}',
      /\/conditions\/allowedPrefixes\/0'?: 'readygate.dev' does not match pattern/,
    ],
    [
      'a condition prefix with a quote (it is rendered into CEL)',
      `conditions: {allowedPrefixes: ["x.dev/a'b"]}`,
      /\/conditions\/allowedPrefixes\/0'?: .* does not match pattern/,
    ],
    [
      'an uppercase condition prefix domain',
      'conditions: {allowedPrefixes: ["Example.com/"]}',
      /\/conditions\/allowedPrefixes\/0'?: 'Example.com\/' does not match pattern/,
    ],
    [
      'no condition prefix at all',
      'conditions: {allowedPrefixes: []}',
      /\/conditions\/allowedPrefixes'?: minItems: got 0, want 1/,
    ],
    [
      'a duration with more than 3 decimals (the chart could not round it as the operator does)',
      'leaderElection: {retryPeriod: "1.0005s"}',
      /\/leaderElection\/retryPeriod'?: '1.0005s' does not match pattern/,
    ],
    ['a string commonLabel value', 'commonLabels: {team: 1}', /\/commonLabels\/team'?: got number, want string/],
    [
      'an extra volume without a name',
      'extraVolumes: [{emptyDir: {}}]',
      /\/extraVolumes\/0'?: missing property 'name'/,
    ],
    [
      'an extra volume mount without a mountPath',
      'extraVolumeMounts: [{name: certs}]',
      /\/extraVolumeMounts\/0'?: missing property 'mountPath'/,
    ],
    [
      'a negative revisionHistoryLimit',
      'revisionHistoryLimit: -1',
      /\/revisionHistoryLimit'?: minimum: got -1, want 0/,
    ],
    [
      'a list of extraObjects given as one map',
      'extraObjects: {kind: ConfigMap}',
      /\/extraObjects'?: got object, want array/,
    ],
    [
      'a bad PDB maxUnavailable',
      'podDisruptionBudget: {maxUnavailable: "half"}',
      /\/podDisruptionBudget\/maxUnavailable'?: '?oneOf'? failed/,
    ],
    ['too many shard buckets', 'sharding: {buckets: 257}', /\/sharding\/buckets'?: maximum: got 257, want 256/],
    ['no shard bucket', 'sharding: {buckets: 0}', /\/sharding\/buckets'?: minimum: got 0, want 1/],
    ['a typo in the sharding section', 'sharding: {enable: true}', /\/sharding'?: additional properties 'enable'/],
    [
      'admissionPolicy.enabled as a string',
      'admissionPolicy: {enabled: "no"}',
      /\/admissionPolicy\/enabled'?: got string, want boolean/,
    ],
  ];
  for (const [name, values, message] of cases) {
    it(name, () => {
      expect(rejection(values)).toMatch(message);
    });
  }

  it('several replicas without leader election (a cross-field check in the templates)', () => {
    expect(rejection('replicaCount: 3\nleaderElection: {enabled: false}')).toContain(
      'replicaCount=3 needs leaderElection.enabled=true',
    );
  });

  it('a ServiceMonitor without the metrics Service', () => {
    expect(rejection('metrics: {service: {enabled: false}, serviceMonitor: {enabled: true}}')).toContain(
      'metrics.serviceMonitor.enabled=true needs metrics.service.enabled=true',
    );
  });

  it('an existing ServiceAccount without a name', () => {
    expect(rejection('serviceAccount: {create: false}')).toContain('serviceAccount.name is required');
  });
});

describe('sharding: the chart refuses what `readygate run --shard-buckets` refuses, and idle replicas', () => {
  it('sharding without leader election', () => {
    expect(setRejection(['sharding.enabled=true', 'replicaCount=1', 'leaderElection.enabled=false'])).toContain(
      failure(
        'sharding.enabled=true needs leaderElection.enabled=true: the bucket Leases reuse its namespace, id and timings (readygate run refuses --shard-buckets without --leader-elect)',
      ),
    );
    expect(() => parseRunOptions(['--shard-buckets=16'], { POD_NAME: 'p' })).toThrow(
      '--shard-buckets needs --leader-elect',
    );
  });

  it('fewer buckets than replicas', () => {
    expect(setRejection(['sharding.enabled=true', 'replicaCount=5', 'sharding.buckets=3'])).toContain(
      failure(
        'sharding.buckets=3 is below replicaCount=5: a replica holds whole buckets, so 2 replicas would idle; raise sharding.buckets or lower replicaCount',
      ),
    );
    // As many buckets as replicas is enough.
    const d = one(render(['sharding.enabled=true', 'replicaCount=5', 'sharding.buckets=5']), 'Deployment');
    expect(d.spec.template.spec.containers[0].args).toContain('--shard-buckets=5');
  });

  it('more than 256 buckets, also without the schema', () => {
    const r = helm(templateArgs(['sharding.enabled=true', 'sharding.buckets=300'], ['--skip-schema-validation']));
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(
      failure(
        'sharding.buckets=300 is out of range: from 1 to 256 (each held bucket is a Lease its holder updates every leaderElection.retryPeriod)',
      ),
    );
  });

  it('a leaderElection.id too long to name the bucket Leases', () => {
    const id = 'a'.repeat(50); // a-…-s16-bucket-15: 64 characters
    const refusal = setRejection(['sharding.enabled=true', `leaderElection.id=${id}`]);
    expect(refusal).toContain(
      failure(
        `leaderElection.id=${id} is too long for sharding: the bucket Lease ${id}-s16-bucket-15 has 64 characters, at most 63 (readygate run refuses it); shorten leaderElection.id`,
      ),
    );
    expect(() =>
      parseRunOptions(['--leader-elect', `--leader-election-id=${id}`, '--shard-buckets=16'], { POD_NAME: 'p' }),
    ).toThrow('too long to name the shard leases');
    // One character less fits, and the operator accepts what the chart renders.
    const d = one(render(['sharding.enabled=true', `leaderElection.id=${id.slice(1)}`]), 'Deployment');
    const args = d.spec.template.spec.containers[0].args as string[];
    expect(() => parseRunOptions(args.slice(1), { POD_NAME: 'p' })).not.toThrow();
  });

  it('checks nothing while sharding is off', () => {
    expect(render(['replicaCount=5', 'sharding.buckets=3']).length).toBeGreaterThan(0);
  });
});

describe('watchNamespaces given as one name', () => {
  const hint = (got: string, name: string) =>
    `watchNamespaces must be a list of namespace names, got ${got}: use --set 'watchNamespaces={${name}}' (several: --set 'watchNamespaces={shop,billing}'), or watchNamespaces: [${name}] in a values file`;

  it('--set watchNamespaces=shop names the list syntax', () => {
    expect(setRejection(['watchNamespaces=shop'])).toContain(failure(hint('"shop" (a string)', 'shop')));
  });

  it('a string in a values file names the list syntax', () => {
    expect(rejection('watchNamespaces: "x"')).toContain(failure(hint('"x" (a string)', 'x')));
  });

  it('a number (--set watchNamespaces=123) gets the same hint', () => {
    expect(setRejection(['watchNamespaces=123'])).toContain(failure(hint('"123" (a int64)', '123')));
  });

  it("--set 'watchNamespaces={shop}' is the list it asks for", () => {
    const objects = render(['watchNamespaces={shop}']);
    expect(objects.filter((o) => o.kind === 'Role').map((o) => o.metadata.namespace)).toContain('shop');
  });
});

describe('leader election timings: the chart refuses what `readygate run` refuses', () => {
  const RUN_REFUSAL = 'leader election needs retry-period < renew-deadline < lease-duration';
  const timings = (retry: string, renew: string, lease: string) => [
    `leaderElection.retryPeriod=${retry}`,
    `leaderElection.renewDeadline=${renew}`,
    `leaderElection.leaseDuration=${lease}`,
  ];
  const runArgs = (retry: string, renew: string, lease: string) => [
    `--retry-period=${retry}`,
    `--renew-deadline=${renew}`,
    `--lease-duration=${lease}`,
  ];
  const refused: [string, [string, string, string], string][] = [
    [
      'a lease shorter than the renew deadline (leaseDuration=5s)',
      ['2s', '10s', '5s'],
      'retryPeriod=2s (2000 ms), renewDeadline=10s (10000 ms), leaseDuration=5s (5000 ms)',
    ],
    [
      'a renew deadline equal to the lease, in other units',
      ['2s', '0.25m', '15000ms'],
      'retryPeriod=2s (2000 ms), renewDeadline=0.25m (15000 ms), leaseDuration=15000ms (15000 ms)',
    ],
    [
      'a retry period equal to the renew deadline',
      ['10s', '10s', '15s'],
      'retryPeriod=10s (10000 ms), renewDeadline=10s (10000 ms), leaseDuration=15s (15000 ms)',
    ],
    [
      'a retry period that rounds up to the renew deadline',
      ['9999.5ms', '10s', '15s'],
      'retryPeriod=9999.5ms (10000 ms), renewDeadline=10s (10000 ms), leaseDuration=15s (15000 ms)',
    ],
  ];
  for (const [name, [retry, renew, lease], got] of refused) {
    it(name, () => {
      expect(() => parseRunOptions(runArgs(retry, renew, lease), {})).toThrow(RUN_REFUSAL);
      expect(setRejection(timings(retry, renew, lease))).toContain(
        failure(
          `leaderElection needs retryPeriod < renewDeadline < leaseDuration (readygate run refuses anything else, and the pod would crash-loop); got ${got}`,
        ),
      );
    });
  }

  const accepted: [string, [string, string, string]][] = [
    ['the defaults spelled in other units', ['2000ms', '0.167m', '0.25m']],
    ['a retry period that rounds down below the renew deadline', ['9999.499ms', '10s', '15s']],
    ['long timings', ['1m', '0.5h', '1h']],
  ];
  for (const [name, [retry, renew, lease]] of accepted) {
    it(`accepts ${name}, as the operator does with the rendered flags`, () => {
      const objects = render(timings(retry, renew, lease));
      const d = one(objects, 'Deployment');
      const args = d.spec.template.spec.containers[0].args as string[];
      expect(args).toEqual(expect.arrayContaining(runArgs(retry, renew, lease)));
      expect(() => parseRunOptions(args.slice(1), {})).not.toThrow();
    });
  }

  it('does not check timings the chart does not pass (leader election off)', () => {
    const objects = render(['replicaCount=1', 'leaderElection.enabled=false', 'leaderElection.leaseDuration=5s']);
    const d = one(objects, 'Deployment');
    expect(() => parseRunOptions((d.spec.template.spec.containers[0].args as string[]).slice(1), {})).not.toThrow();
  });
});

describe('shutdownGrace against terminationGracePeriodSeconds (the process exits within grace + 5 s)', () => {
  const message = (grace: string, need: number, got: number) =>
    `shutdownGrace=${grace} needs terminationGracePeriodSeconds of at least ${need}, got ${got}: readygate exits at most shutdownGrace + 5 s after SIGTERM, and the kubelet kills it terminationGracePeriodSeconds after SIGTERM; raise terminationGracePeriodSeconds or lower shutdownGrace`;

  it('refuses a grace that leaves no 5 s margin', () => {
    expect(setRejection(['shutdownGrace=30s'])).toContain(failure(message('30s', 35, 30)));
  });

  it('rounds the need up to whole seconds', () => {
    expect(setRejection(['shutdownGrace=25.001s'])).toContain(failure(message('25.001s', 31, 30)));
    expect(setRejection(['shutdownGrace=1m', 'terminationGracePeriodSeconds=60'])).toContain(
      failure(message('1m', 65, 60)),
    );
  });

  it('accepts exactly grace + 5 s', () => {
    const d = one(render(['shutdownGrace=25s']), 'Deployment');
    expect(d.spec.template.spec.terminationGracePeriodSeconds).toBe(30);
    expect(d.spec.template.spec.containers[0].args).toContain('--shutdown-grace=25s');
  });
});

describe('gateRelease.after: a duration readygate run takes, or 0', () => {
  const argsOf = (objects: ReturnType<typeof render>) =>
    one(objects, 'Deployment').spec.template.spec.containers[0].args as string[];

  it('refuses what is no duration', () => {
    expect(rejection('gateRelease: {after: soon}')).toMatch(/\/gateRelease\/after/);
    expect(rejection('gateRelease: {after: 60}')).toMatch(/\/gateRelease\/after/);
  });

  it('passes a duration, and 0 (from --set or a values file) to keep conditions', () => {
    for (const [objects, ms] of [
      [render(['gateRelease.after=5m']), 300_000],
      [render(['gateRelease.after=0']), 0],
    ] as const) {
      const args = argsOf(objects);
      expect(parseRunOptions(args.slice(1), {}).releaseOrphanedGatesAfterMs).toBe(ms);
    }
    const file = join(dir, 'values-release-off.yaml');
    writeFileSync(file, 'gateRelease: {after: 0}\n');
    const r = helm(templateArgs([], ['-f', file]));
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('- --release-orphaned-gates-after=0\n');
  });
});

describe('extension values refuse what would break the operator', () => {
  it('commonLabels and podLabels may not set the labels the chart sets', () => {
    expect(setRejection(['commonLabels.app\\.kubernetes\\.io/instance=other'])).toContain(
      failure('commonLabels may not set app.kubernetes.io/instance: the chart sets that label itself'),
    );
    expect(rejection('podLabels: {helm.sh/chart: mine}')).toContain(
      failure('podLabels may not set helm.sh/chart: the chart sets that label itself'),
    );
  });

  it('podDisruptionBudget takes minAvailable or maxUnavailable, not both', () => {
    expect(rejection('podDisruptionBudget: {minAvailable: 1, maxUnavailable: 50%}')).toContain(
      failure(
        'podDisruptionBudget.minAvailable=1 and podDisruptionBudget.maxUnavailable=50% are both set: a PodDisruptionBudget takes one of them; set the other to null (--set podDisruptionBudget.minAvailable=null)',
      ),
    );
  });

  it('extraVolumes and extraVolumeMounts may not replace the tmp volume of the read-only root filesystem', () => {
    expect(rejection('extraVolumes: [{name: certs, emptyDir: {}}, {name: tmp, emptyDir: {}}]')).toContain(
      failure(
        'extraVolumes[1] is named tmp: the chart mounts its own tmp volume at /tmp (the root filesystem is read-only); choose another name',
      ),
    );
    expect(rejection('extraVolumeMounts: [{name: certs, mountPath: /tmp/}]')).toContain(
      failure(
        'extraVolumeMounts[0] mounts at /tmp, where the chart mounts its own tmp volume; choose another mountPath',
      ),
    );
  });
});

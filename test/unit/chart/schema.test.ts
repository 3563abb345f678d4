// values.schema.json and the chart's cross-field checks refuse bad values at install time, with a
// message that names the offending value.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { helm, templateArgs, toolsDir } from './helm.ts';

let dir: string;
beforeAll(() => {
  toolsDir();
  dir = mkdtempSync(join(tmpdir(), 'readygate-chart-'));
}, 900_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Renders with a values file holding yamlText and returns helm's error output (failing if helm succeeded). */
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
    ['watchNamespaces as a string', 'watchNamespaces: "x"', /\/watchNamespaces'?: got string, want array/],
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

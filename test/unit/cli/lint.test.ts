// What `readygate check` decides before it probes: the documents of a file, their validity as the
// API server would judge it, and the ports --port gives a bare --address.
import { describe, expect, it } from 'vitest';
import type { ProbePolicy } from '../../../src/api/types.ts';
import { loadValidator } from '../../../src/api/validate.ts';
import { InvalidInput, lintPolicies, missingNamedPort, parsePortFlags } from '../../../src/cli/lint.ts';
import { UsageError } from '../../../src/cli/options.ts';

const validator = loadValidator();
const POLICY = `apiVersion: readygate.dev/v1alpha1
kind: ProbePolicy
metadata: {name: web}
spec:
  conditionType: readygate.dev/web
  selector: {matchLabels: {app: web}}
  probe:
    httpGet: {port: http, path: /ready}
`;
const DEPLOYMENT = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
`;

describe('lintPolicies', () => {
  it('checks every document, skips other kinds with a note and returns the defaulted policies', () => {
    const text = `---\n${DEPLOYMENT}---\n${POLICY}---\n${POLICY.replace('name: web', 'name: web2')}`;
    const r = lintPolicies(text, 'p.yaml', validator);
    expect(r.invalid).toEqual([]);
    expect(r.skipped).toEqual(['p.yaml document 1: skipped, not a ProbePolicy (apps/v1 Deployment)']);
    expect(r.policies.map((p) => [p.document, p.name])).toEqual([
      [2, 'web'],
      [3, 'web2'],
    ]);
    expect(r.policies[0]?.policy.spec.probe).toMatchObject({
      periodSeconds: 10,
      timeoutSeconds: 1,
      failureThreshold: 3,
    });
  });

  it('names the document, the policy and the field of each error, in the API server words', () => {
    const slow = POLICY.replace('path: /ready}', 'path: /ready}\n    timeoutSeconds: 10');
    const misspelt = POLICY.replace('name: web}', 'name: db}').replace(
      'path: /ready}',
      'path: /ready, successCode: ["200"]}\n    timeoutSeconds: 10',
    );
    const r = lintPolicies(`${POLICY}---\n${slow}---\n${misspelt}`, 'p.yaml', validator);
    expect(r.policies.map((p) => p.name)).toEqual(['web']);
    expect(r.invalid).toEqual([
      'p.yaml document 2 (web): spec.probe.timeoutSeconds: Invalid value: "object": timeoutSeconds must be less than periodSeconds',
      // A strict decode refuses unknown fields before any validation, so they come alone.
      'p.yaml document 3 (db): spec.probe.httpGet.successCode: unknown field',
    ]);
  });

  it('gives the line and column of a YAML syntax error', () => {
    const text = `${POLICY}---\nkind: ProbePolicy\nspec: {probe: [}\n`;
    expect(() => lintPolicies(text, 'p.yaml', validator)).toThrow(InvalidInput);
    expect(() => lintPolicies(text, 'p.yaml', validator)).toThrow(/^p\.yaml:11:\d+: invalid YAML: \S/);
  });

  it('refuses a duplicated key, as a strict decode does', () => {
    expect(() => lintPolicies(`${POLICY}kind: ProbePolicy\n`, 'p.yaml', validator)).toThrow(
      /p\.yaml:9:1: invalid YAML/,
    );
  });

  it('refuses a file without any ProbePolicy', () => {
    expect(() => lintPolicies(DEPLOYMENT, 'd.yaml', validator)).toThrow('d.yaml has no ProbePolicy document');
    expect(() => lintPolicies('', 'e.yaml', validator)).toThrow('e.yaml has no ProbePolicy document');
  });
});

describe('--port', () => {
  it('parses repeated NAME=NUMBER flags', () => {
    expect([...parsePortFlags(['http=8080', 'grpc-web=9090'])]).toEqual([
      ['http', 8080],
      ['grpc-web', 9090],
    ]);
  });

  it.each([['http'], ['http=0'], ['http=65536'], ['HTTP=80'], ['8080=80'], ['=80'], ['a-very-long-port-name=80']])(
    'refuses %s',
    (flag) => {
      expect(() => parsePortFlags([flag])).toThrow(UsageError);
    },
  );

  it('names a named port of the policy that --port does not give', () => {
    const policy = { spec: { probe: { httpGet: { port: 'http' } } } } as unknown as ProbePolicy;
    expect(missingNamedPort(policy, new Map())).toBe(
      'spec.probe.httpGet.port is the named port "http": a bare --address has no container ports; give --port http=NUMBER',
    );
    expect(missingNamedPort(policy, new Map([['http', 8080]]))).toBeUndefined();
    const numeric = { spec: { probe: { tcpSocket: { port: 5432 } } } } as unknown as ProbePolicy;
    expect(missingNamedPort(numeric, new Map())).toBeUndefined();
  });
});

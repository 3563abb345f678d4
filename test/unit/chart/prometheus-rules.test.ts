// metrics.prometheusRule: the PrometheusRule the chart renders from files/prometheus-rules.yaml,
// checked by promtool (built by scripts/build-binaries.sh): `check rules` for syntax and
// `test rules` with prometheus-rules.promtool.yaml, where each alert fires, and does not.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { CHART, type K8sObject, NAMESPACE, ofKind, one, render, toolsDir } from './helm.ts';
import { exportedSeries, metricNamesIn } from './promql.ts';

interface Rule {
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface Group {
  name: string;
  rules: Rule[];
}

const ALERTS = [
  'ReadygateGateFailing',
  'ReadygateFailsafeTripped',
  'ReadygatePatchErrors',
  'ReadygateOverloaded',
  'ReadygateBug',
  'ReadygateNoLeader',
];
const TESTS = join(import.meta.dirname, 'prometheus-rules.promtool.yaml');

function promtool(args: string[], cwd: string) {
  const r = spawnSync(join(toolsDir(), 'promtool'), args, { cwd, encoding: 'utf8' });
  if (r.error) throw r.error;
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** Writes groups as rules.yaml next to a copy of the promtool tests, and runs `promtool test rules`. */
function testRules(dir: string, groups: Group[]) {
  writeFileSync(join(dir, 'rules.yaml'), stringify({ groups }));
  copyFileSync(TESTS, join(dir, 'tests.yaml'));
  return promtool(['test', 'rules', 'tests.yaml'], dir);
}

const prometheusRule = (set: string[] = []) =>
  one(render(['metrics.prometheusRule.enabled=true', ...set]), 'PrometheusRule');

describe('the chart PrometheusRule', () => {
  let dir: string;
  let groups: Group[];
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'readygate-rules-'));
    groups = (prometheusRule() as K8sObject).spec.groups as Group[];
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is off by default', () => {
    expect(ofKind(render(), 'PrometheusRule')).toEqual([]);
  });

  it('renders the groups of files/prometheus-rules.yaml, with its labels and namespace', () => {
    const file = parse(readFileSync(join(CHART, 'files/prometheus-rules.yaml'), 'utf8')) as { groups: Group[] };
    expect(groups).toEqual(file.groups);
    expect(groups.flatMap((g) => g.rules.map((r) => r.alert))).toEqual(ALERTS);
    const rule = prometheusRule(['metrics.prometheusRule.labels.release=kps']);
    expect(rule.metadata.namespace).toBe(NAMESPACE);
    expect(rule.metadata.labels).toMatchObject({ release: 'kps', 'app.kubernetes.io/instance': 'readygate' });
    expect(prometheusRule(['metrics.prometheusRule.namespace=monitoring']).metadata.namespace).toBe('monitoring');
  });

  it('every alert has a severity and a summary, and reads only metrics readygate exports', () => {
    const exported = exportedSeries();
    for (const rule of groups.flatMap((g) => g.rules)) {
      expect(rule.labels?.severity, rule.alert).toMatch(/^(warning|critical)$/);
      expect(rule.annotations?.summary, rule.alert).toBeTruthy();
      const names = metricNamesIn(rule.expr);
      expect(names.length, rule.alert).toBeGreaterThan(0);
      for (const name of names) expect(exported, `${rule.alert}: ${name}`).toContain(name);
    }
  });

  it('passes promtool check rules', () => {
    writeFileSync(join(dir, 'rules.yaml'), stringify({ groups }));
    const r = promtool(['check', 'rules', 'rules.yaml'], dir);
    expect(r.out).toContain('SUCCESS: 6 rules found');
    expect(r.status, r.out).toBe(0);
  });

  it('passes promtool test rules: each alert fires on its series after its `for`, and not otherwise', () => {
    const tests = parse(readFileSync(TESTS, 'utf8')) as { tests: { alert_rule_test: { alertname: string }[] }[] };
    const tested = new Set(tests.tests.flatMap((t) => t.alert_rule_test.map((a) => a.alertname)));
    expect([...tested].sort()).toEqual([...ALERTS].sort());
    const r = testRules(dir, groups);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toContain('SUCCESS');
  });

  it('the promtool tests catch a changed threshold or a dropped `for` (they are not vacuous)', () => {
    const edit = (alert: string, change: (r: Rule) => void) =>
      structuredClone(groups).map((g) => ({
        ...g,
        rules: g.rules.map((r) => {
          if (r.alert === alert) change(r);
          return r;
        }),
      }));
    const cases: [string, (r: Rule) => void][] = [
      [
        'ReadygateGateFailing',
        (r) => {
          r.expr = r.expr.replace('> 0.5', '>= 0.5');
        },
      ],
      [
        'ReadygateNoLeader',
        (r) => {
          delete r.for;
        },
      ],
      ['ReadygateOverloaded', (r) => Object.assign(r, { for: '30m' })],
    ];
    for (const [alert, change] of cases) {
      const r = testRules(dir, edit(alert, change));
      expect(r.status, r.out).not.toBe(0);
      // promtool names the alert whose expectation failed (not a parse error of the file).
      expect(r.out).toMatch(new RegExp(`FAILED:[\\s\\S]*alertname: ${alert}`));
    }
  });
});

// metrics.dashboard: the ConfigMap holding files/dashboard.json for Grafana's dashboard sidecar.
// The JSON must parse, and every PromQL expression must read only metrics readygate exports
// (src/observability/metrics.ts), so a renamed metric breaks this test and not a user's dashboard.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CHART, NAMESPACE, ofKind, one, render } from './helm.ts';
import { exportedSeries, metricNamesIn } from './promql.ts';

interface Panel {
  type: string;
  title: string;
  datasource?: { uid: string };
  targets?: { expr: string; datasource?: { uid: string } }[];
  panels?: Panel[];
}

/** Grafana's data source variable, which every query names. */
const DATASOURCE = ['$', '{datasource}'].join('');
const json = readFileSync(join(CHART, 'files/dashboard.json'), 'utf8');
const dashboard = JSON.parse(json) as { uid: string; title: string; panels: Panel[]; templating: { list: unknown[] } };
const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
const configMap = (set: string[] = []) =>
  one(render(['metrics.dashboard.enabled=true', ...set]), 'ConfigMap', 'readygate-dashboard');

describe('the chart Grafana dashboard', () => {
  it('is off by default', () => {
    expect(ofKind(render(), 'ConfigMap')).toEqual([]);
  });

  it('is a ConfigMap with the sidecar label and the JSON byte for byte', () => {
    const cm = configMap();
    expect(cm.metadata.namespace).toBe(NAMESPACE);
    expect(cm.metadata.labels).toMatchObject({ grafana_dashboard: '1', 'app.kubernetes.io/instance': 'readygate' });
    expect(cm.data['readygate.json']).toBe(json);
  });

  it('takes another sidecar label, annotations and namespace', () => {
    const cm = configMap([
      'metrics.dashboard.labels.grafana_dashboard=null',
      'metrics.dashboard.labels.dashboards=readygate',
      'metrics.dashboard.annotations.grafana_folder=Operators',
      'metrics.dashboard.namespace=monitoring',
    ]);
    expect(cm.metadata.labels?.grafana_dashboard).toBeUndefined();
    expect(cm.metadata.labels?.dashboards).toBe('readygate');
    expect(cm.metadata.annotations).toEqual({ grafana_folder: 'Operators' });
    expect(cm.metadata.namespace).toBe('monitoring');
  });

  it('has a uid, a title and a data source variable every query uses', () => {
    expect(dashboard.uid).toBe('readygate');
    expect(dashboard.title).toBe('readygate');
    expect(dashboard.templating.list).toContainEqual(
      expect.objectContaining({ name: 'datasource', type: 'datasource' }),
    );
    const queried = panels.filter((p) => p.type !== 'row');
    expect(queried.length).toBeGreaterThan(10);
    for (const p of queried) {
      expect(p.datasource?.uid, p.title).toBe(DATASOURCE);
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets ?? []) expect(t.datasource?.uid, p.title).toBe(DATASOURCE);
    }
  });

  it('every expression reads only metrics readygate exports, and every metric has a panel', () => {
    const exported = exportedSeries();
    const used = new Set<string>();
    for (const p of panels) {
      for (const t of p.targets ?? []) {
        const names = metricNamesIn(t.expr);
        expect(names.length, `${p.title}: ${t.expr}`).toBeGreaterThan(0);
        for (const name of names) {
          expect(exported, `${p.title}: ${name}`).toContain(name);
          used.add(name);
        }
      }
    }
    // Histograms are read through _bucket; their _sum and _count need no panel of their own.
    const unused = [...exported].filter((n) => !used.has(n) && !/_(sum|count)$/.test(n));
    expect(unused).toEqual([]);
  });
});

describe('metricNamesIn', () => {
  it('finds the selected metrics and skips functions, labels, durations and variables', () => {
    expect(
      metricNamesIn(
        'histogram_quantile(0.99, sum by (le, handler) (rate(readygate_probe_duration_seconds_bucket{result!="x y"}[$__rate_interval]))) / on (pod) group_left max(up) > 1e3 or vector(0)',
      ),
    ).toEqual(['readygate_probe_duration_seconds_bucket', 'up']);
  });
});

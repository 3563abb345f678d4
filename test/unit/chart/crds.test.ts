// templates/crds.yaml: the CRD rendered from files/ is the repository's CRD, with the chart's labels
// and (crds.keep) the annotation that keeps it on uninstall; crds.enabled=false renders none.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { helm, type K8sObject, ofKind, one, ROOT, render, templateArgs } from './helm.ts';

const source = parse(readFileSync(join(ROOT, 'crds/readygate.dev_probepolicies.yaml'), 'utf8')) as K8sObject;
const crd = (objects: K8sObject[]) => one(objects, 'CustomResourceDefinition', 'probepolicies.readygate.dev');

describe('the chart CRD template', () => {
  it('renders the source CRD unchanged apart from metadata labels and annotations', () => {
    const rendered = crd(render());
    const strip = (o: K8sObject) => ({ ...o, metadata: { name: o.metadata.name } });
    expect(strip(rendered)).toEqual(strip(source));
    // The source's own labels are kept; the chart's are added.
    expect(rendered.metadata.labels).toMatchObject(source.metadata.labels ?? {});
    expect(rendered.metadata.labels).toMatchObject({
      'app.kubernetes.io/instance': 'readygate',
      'app.kubernetes.io/managed-by': 'Helm',
    });
  });

  it('carries commonLabels', () => {
    expect(crd(render(['commonLabels.team=platform'])).metadata.labels?.team).toBe('platform');
  });

  it('crds.keep (the default) annotates helm.sh/resource-policy: keep; keep=false does not', () => {
    expect(crd(render()).metadata.annotations).toEqual({ 'helm.sh/resource-policy': 'keep' });
    expect(crd(render(['crds.keep=false'])).metadata.annotations).toBeUndefined();
  });

  it('crds.enabled=false renders no CRD', () => {
    const objects = render(['crds.enabled=false']);
    expect(ofKind(objects, 'CustomResourceDefinition')).toEqual([]);
    expect(objects.map((o) => o.kind)).toContain('Deployment');
  });

  it('the chart has no crds/ folder, which helm would install once and never upgrade', () => {
    const r = helm(templateArgs([], ['--include-crds']));
    expect(r.status).toBe(0);
    expect(r.stdout.match(/^kind: CustomResourceDefinition$/gm)).toHaveLength(1);
  });

  it('refuses a crds value the schema does not know', () => {
    const r = helm(templateArgs(['crds.upgrade=true']));
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/additional properties 'upgrade' not allowed|upgrade/);
  });
});

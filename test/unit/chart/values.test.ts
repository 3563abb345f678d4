// values.yaml, values.schema.json, README.md and Chart.yaml must agree: the README's values table is
// generated from values.yaml, every value has a schema entry and every schema entry a value, and the
// chart's appVersion is the package version.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { renderReadme, valueRows } from '../../../scripts/chart-readme.ts';
import { CHART, ROOT } from './helm.ts';

const read = (file: string) => readFileSync(join(CHART, file), 'utf8');

interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
  additionalProperties?: boolean | Schema;
}

/** Dotted paths of the schema's properties, walking into the sections that values.yaml walks into. */
function schemaPaths(schema: Schema, sections: Set<string>, prefix = ''): string[] {
  return Object.entries(schema.properties ?? {}).flatMap(([key, sub]) => {
    const path = `${prefix}${key}`;
    return sections.has(path) ? schemaPaths(sub, sections, `${path}.`) : [path];
  });
}

describe('chart values', () => {
  it('README.md values table is up to date (fix: node scripts/chart-readme.ts)', () => {
    const readme = read('README.md');
    expect(renderReadme(readme, read('values.yaml'))).toBe(readme);
  });

  it('documents every value, in file order, with a description', () => {
    const rows = valueRows(read('values.yaml'));
    expect(rows.length).toBeGreaterThan(40);
    for (const r of rows) expect(r.description.length, r.key).toBeGreaterThan(5);
    expect(rows.map((r) => r.key)).toContain('exec.enabled');
    expect(rows.map((r) => r.key)).toContain('tls.allowSecretCA');
    expect(rows.map((r) => r.key)).toContain('tls.allowConfigMapCA');
    expect(rows.map((r) => r.key)).toContain('conditions.allowedPrefixes');
    expect(rows.map((r) => r.key)).toContain('admissionPolicy.enabled');
  });

  it('the table generator refuses an undocumented value', () => {
    expect(() => valueRows('# -- documented\na: 1\nb: 2\n')).toThrow(/b has no "# -- description"/);
    expect(valueRows('s:\n  # -- x value\n  x: [1]\n')).toEqual([
      { key: 's.x', type: 'list', default: '[1]', description: 'x value' },
    ]);
  });

  it('values.schema.json describes exactly the keys of values.yaml', () => {
    const schema = JSON.parse(read('values.schema.json')) as Schema;
    const keys = valueRows(read('values.yaml')).map((r) => r.key);
    // Sections are the parents of documented keys (image, leaderElection, metrics.service, ...).
    const sections = new Set(
      keys.flatMap((k) =>
        k
          .split('.')
          .slice(0, -1)
          .map((_, i, parts) => parts.slice(0, i + 1).join('.')),
      ),
    );
    for (const section of sections) {
      let sub: Schema | undefined = schema;
      for (const part of section.split('.')) sub = sub?.properties?.[part];
      expect(sub?.additionalProperties, `schema section ${section} must refuse unknown keys`).toBe(false);
    }
    expect(
      schemaPaths(schema, sections)
        .filter((p) => p !== 'global')
        .sort(),
    ).toEqual([...keys].sort());
  });

  it('appVersion is the package version', () => {
    const chart = parse(read('Chart.yaml')) as { apiVersion: string; appVersion: string; name: string };
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(chart).toMatchObject({ apiVersion: 'v2', name: 'readygate', appVersion: pkg.version });
  });
});

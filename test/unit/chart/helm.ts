// Helpers for the chart's unit tests: run the helm binary that scripts/build-binaries.sh built (a
// cached build returns at once) and parse what `helm template` renders.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { ensureBinaries } from '../../support/control-plane.ts';

export const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
export const CHART = join(ROOT, 'charts/readygate');
export const RELEASE = 'readygate';
export const NAMESPACE = 'readygate-system';

let binDir: string | undefined;

/** The directory holding helm and kubectl, built or taken from the cache on first use. */
export function toolsDir(): string {
  binDir ??= ensureBinaries();
  return binDir;
}

export interface HelmResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs helm with args; never throws on a non-zero exit. */
export function helm(args: string[]): HelmResult {
  const r = spawnSync(join(toolsDir(), 'helm'), args, { encoding: 'utf8' });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  // biome-ignore lint/suspicious/noExplicitAny: rendered manifests are free-form; tests index into them.
  [key: string]: any;
}

/** `helm template` arguments for the chart with --set values (and optional extra flags). */
export function templateArgs(set: string[] = [], extra: string[] = []): string[] {
  return ['template', RELEASE, CHART, '--namespace', NAMESPACE, ...set.flatMap((s) => ['--set', s]), ...extra];
}

/** Renders the chart and returns its objects; throws with helm's error if rendering fails. */
export function render(set: string[] = [], extra: string[] = []): K8sObject[] {
  const r = helm(templateArgs(set, extra));
  if (r.status !== 0) throw new Error(`helm template failed: ${r.stderr}`);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

/**
 * templates/NOTES.txt as `helm install` prints it, rendered without a cluster: `helm template` never
 * renders NOTES.txt, so a copy of the chart also gets a template that puts its text in a ConfigMap.
 */
export function renderNotes(set: string[] = [], extra: string[] = []): string {
  const dir = mkdtempSync(join(tmpdir(), 'readygate-notes-'));
  try {
    const chart = join(dir, 'readygate');
    cpSync(CHART, chart, { recursive: true });
    const notes = readFileSync(join(CHART, 'templates/NOTES.txt'), 'utf8');
    writeFileSync(
      join(chart, 'templates/zz-notes.yaml'),
      `{{- define "test.notes" }}${notes}{{- end }}\n` +
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: {{ include "test.notes" . | toJson }}\n',
    );
    const args = templateArgs(set, ['--show-only', 'templates/zz-notes.yaml', ...extra]);
    const r = helm(args.map((a) => (a === CHART ? chart : a)));
    if (r.status !== 0) throw new Error(`helm template failed: ${r.stderr}`);
    return (parse(r.stdout) as { data: { notes: string } }).data.notes;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The objects of one kind. */
export const ofKind = (objects: K8sObject[], kind: string) => objects.filter((o) => o.kind === kind);

/** The one object of a kind and name; throws unless exactly one exists. */
export function one(objects: K8sObject[], kind: string, name?: string): K8sObject {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind} ${name ?? ''}, found ${found.length}`);
  return found[0]!;
}

export interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  verbs: string[];
}

/** Every (group, resource, verb) triple granted by the rules, as "group/resource:verb" strings. */
export function grants(rules: PolicyRule[]): string[] {
  return rules
    .flatMap((r) =>
      (r.apiGroups ?? ['']).flatMap((g) =>
        (r.resources ?? []).flatMap((res) =>
          r.verbs.map((v) => `${g || 'core'}/${res}:${v}${r.resourceNames ? `@${r.resourceNames.join(',')}` : ''}`),
        ),
      ),
    )
    .sort();
}

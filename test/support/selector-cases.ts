// (labels, selector) cases with the verdict of metav1.LabelSelector semantics (k8s.io/apimachinery
// labels.Requirement.Matches): every matchLabels pair and every requirement must hold; a key the pod
// lacks satisfies NotIn and DoesNotExist only; {} selects every pod. Shared by the unit test of
// src/api/selector.ts and by the integration test that asks kube-apiserver, through the chart's
// gate-injection MutatingAdmissionPolicy, for its own verdict on every pod against every selector.
// Labels are valid pod labels (the API server creates pods with them); selector values are too.
import type { LabelSelector, LabelSelectorRequirement } from '../../src/api/types.ts';

export interface SelectorCase {
  name: string;
  labels: Record<string, string>;
  selector: LabelSelector;
  /** Whether the selector selects a pod with these labels. */
  matches: boolean;
}

type Op = LabelSelectorRequirement['operator'];
const req = (key: string, operator: Op, values?: string[]): LabelSelectorRequirement =>
  values === undefined ? { key, operator } : { key, operator, values };
const exprs = (...matchExpressions: LabelSelectorRequirement[]): LabelSelector => ({ matchExpressions });

const WEB = { app: 'web', tier: 'front', zone: 'a' };
const LONG = `A${'x'.repeat(59)}Z`; // 61 characters
const V63 = `v${'0'.repeat(61)}9`; // the longest label value, 63 characters
const K8S = { 'app.kubernetes.io/name': 'payments', 'app.kubernetes.io/component': 'db' };

export const SELECTOR_CASES: readonly SelectorCase[] = [
  // The empty selector and empty parts of one.
  { name: 'empty selector, pod without labels', labels: {}, selector: {}, matches: true },
  { name: 'empty selector, labelled pod', labels: WEB, selector: {}, matches: true },
  { name: 'empty matchLabels', labels: WEB, selector: { matchLabels: {} }, matches: true },
  { name: 'empty matchExpressions', labels: {}, selector: { matchExpressions: [] }, matches: true },
  // matchLabels.
  { name: 'matchLabels one pair', labels: WEB, selector: { matchLabels: { app: 'web' } }, matches: true },
  { name: 'matchLabels value mismatch', labels: WEB, selector: { matchLabels: { app: 'db' } }, matches: false },
  { name: 'matchLabels key missing', labels: WEB, selector: { matchLabels: { team: 'web' } }, matches: false },
  { name: 'matchLabels, pod without labels', labels: {}, selector: { matchLabels: { app: 'web' } }, matches: false },
  {
    name: 'matchLabels many pairs, pod has more',
    labels: { ...WEB, extra: 'yes' },
    selector: { matchLabels: WEB },
    matches: true,
  },
  {
    name: 'matchLabels many pairs, one value mismatch',
    labels: WEB,
    selector: { matchLabels: { ...WEB, zone: 'b' } },
    matches: false,
  },
  {
    name: 'matchLabels many pairs, one key missing',
    labels: { app: 'web', tier: 'front' },
    selector: { matchLabels: WEB },
    matches: false,
  },
  { name: 'matchLabels value case differs', labels: WEB, selector: { matchLabels: { app: 'Web' } }, matches: false },
  { name: 'matchLabels key case differs', labels: WEB, selector: { matchLabels: { App: 'web' } }, matches: false },
  {
    name: 'matchLabels value is a prefix of the label',
    labels: { app: 'web-1' },
    selector: { matchLabels: { app: 'web' } },
    matches: false,
  },
  {
    name: 'matchLabels empty value, label empty',
    labels: { canary: '' },
    selector: { matchLabels: { canary: '' } },
    matches: true,
  },
  {
    name: 'matchLabels empty value, key missing',
    labels: WEB,
    selector: { matchLabels: { canary: '' } },
    matches: false,
  },
  {
    name: 'matchLabels empty value, label non-empty',
    labels: { canary: 'yes' },
    selector: { matchLabels: { canary: '' } },
    matches: false,
  },
  {
    name: 'matchLabels prefixed keys',
    labels: { ...K8S, app: 'web' },
    selector: { matchLabels: K8S },
    matches: true,
  },
  {
    name: 'matchLabels prefixed key, pod has the bare name',
    labels: { name: 'payments' },
    selector: { matchLabels: { 'app.kubernetes.io/name': 'payments' } },
    matches: false,
  },
  {
    name: 'matchLabels dotted key is not a prefixed key',
    labels: { 'a.b': 'c' },
    selector: { matchLabels: { 'a/b': 'c' } },
    matches: false,
  },
  {
    name: 'matchLabels unusual valid values',
    labels: { version: 'v1.2.3', build: 'A_b-C.9', n: '0', long: V63 },
    selector: { matchLabels: { version: 'v1.2.3', build: 'A_b-C.9', n: '0', long: V63 } },
    matches: true,
  },
  {
    name: 'matchLabels numeric-looking values differ',
    labels: { n: '00' },
    selector: { matchLabels: { n: '0' } },
    matches: false,
  },
  {
    name: 'matchLabels long prefixed key',
    labels: { 'very.long.sub-domain.example.com/a_B-c.d': LONG },
    selector: { matchLabels: { 'very.long.sub-domain.example.com/a_B-c.d': LONG } },
    matches: true,
  },
  // Keys that name JavaScript object properties: only a pod's own labels count.
  { name: 'key "constructor" missing', labels: {}, selector: { matchLabels: { constructor: 'x' } }, matches: false },
  {
    name: 'key "constructor" present',
    labels: { constructor: 'x' },
    selector: { matchLabels: { constructor: 'x' } },
    matches: true,
  },
  { name: 'key "toString" In, missing', labels: WEB, selector: exprs(req('toString', 'In', ['a'])), matches: false },
  {
    name: 'key "hasOwnProperty" Exists, missing',
    labels: {},
    selector: exprs(req('hasOwnProperty', 'Exists')),
    matches: false,
  },
  // In.
  { name: 'In one value, present', labels: WEB, selector: exprs(req('tier', 'In', ['front'])), matches: true },
  {
    name: 'In several values, present',
    labels: WEB,
    selector: exprs(req('tier', 'In', ['back', 'front'])),
    matches: true,
  },
  { name: 'In, value not listed', labels: WEB, selector: exprs(req('tier', 'In', ['back', 'db'])), matches: false },
  { name: 'In, key missing', labels: WEB, selector: exprs(req('team', 'In', ['front'])), matches: false },
  {
    name: 'In empty value, label empty',
    labels: { canary: '' },
    selector: exprs(req('canary', 'In', [''])),
    matches: true,
  },
  { name: 'In empty value, key missing', labels: WEB, selector: exprs(req('canary', 'In', [''])), matches: false },
  {
    name: 'In empty or a value, label set',
    labels: { canary: 'yes' },
    selector: exprs(req('canary', 'In', ['', 'yes'])),
    matches: true,
  },
  // NotIn.
  { name: 'NotIn, key missing', labels: WEB, selector: exprs(req('team', 'NotIn', ['a'])), matches: true },
  { name: 'NotIn, pod without labels', labels: {}, selector: exprs(req('team', 'NotIn', ['a'])), matches: true },
  { name: 'NotIn, value listed', labels: WEB, selector: exprs(req('zone', 'NotIn', ['b', 'a'])), matches: false },
  { name: 'NotIn, value not listed', labels: WEB, selector: exprs(req('zone', 'NotIn', ['b', 'c'])), matches: true },
  {
    name: 'NotIn empty value, label empty',
    labels: { canary: '' },
    selector: exprs(req('canary', 'NotIn', [''])),
    matches: false,
  },
  { name: 'NotIn empty value, key missing', labels: WEB, selector: exprs(req('canary', 'NotIn', [''])), matches: true },
  {
    name: 'NotIn empty value, label set',
    labels: { canary: 'yes' },
    selector: exprs(req('canary', 'NotIn', [''])),
    matches: true,
  },
  // Exists and DoesNotExist.
  { name: 'Exists, present', labels: WEB, selector: exprs(req('zone', 'Exists')), matches: true },
  {
    name: 'Exists, present and empty',
    labels: { canary: '' },
    selector: exprs(req('canary', 'Exists')),
    matches: true,
  },
  { name: 'Exists, missing', labels: WEB, selector: exprs(req('canary', 'Exists')), matches: false },
  { name: 'DoesNotExist, missing', labels: WEB, selector: exprs(req('canary', 'DoesNotExist')), matches: true },
  { name: 'DoesNotExist, present', labels: WEB, selector: exprs(req('zone', 'DoesNotExist')), matches: false },
  {
    name: 'DoesNotExist, present and empty',
    labels: { canary: '' },
    selector: exprs(req('canary', 'DoesNotExist')),
    matches: false,
  },
  {
    name: 'DoesNotExist on several keys, all missing',
    labels: WEB,
    selector: exprs(req('canary', 'DoesNotExist'), req('app.kubernetes.io/name', 'DoesNotExist')),
    matches: true,
  },
  // Several requirements, ANDed.
  {
    name: 'In and Exists, both hold',
    labels: WEB,
    selector: exprs(req('app', 'In', ['web', 'api']), req('zone', 'Exists')),
    matches: true,
  },
  {
    name: 'In and Exists, the second fails',
    labels: WEB,
    selector: exprs(req('app', 'In', ['web', 'api']), req('team', 'Exists')),
    matches: false,
  },
  {
    name: 'In and NotIn on one key, value in both',
    labels: { app: 'api' },
    selector: exprs(req('app', 'In', ['web', 'api']), req('app', 'NotIn', ['api'])),
    matches: false,
  },
  {
    name: 'In and NotIn on one key, value in In only',
    labels: { app: 'web' },
    selector: exprs(req('app', 'In', ['web', 'api']), req('app', 'NotIn', ['api'])),
    matches: true,
  },
  {
    name: 'Exists and DoesNotExist on one key',
    labels: WEB,
    selector: exprs(req('zone', 'Exists'), req('zone', 'DoesNotExist')),
    matches: false,
  },
  // matchLabels and matchExpressions together.
  {
    name: 'matchLabels and expressions, both hold',
    labels: WEB,
    selector: { matchLabels: { app: 'web' }, matchExpressions: [req('zone', 'NotIn', ['b']), req('tier', 'Exists')] },
    matches: true,
  },
  {
    name: 'matchLabels holds, an expression fails',
    labels: WEB,
    selector: { matchLabels: { app: 'web' }, matchExpressions: [req('zone', 'In', ['b'])] },
    matches: false,
  },
  {
    name: 'matchLabels fails, the expressions hold',
    labels: WEB,
    selector: { matchLabels: { app: 'db' }, matchExpressions: [req('zone', 'In', ['a'])] },
    matches: false,
  },
  {
    name: 'prefixed keys in matchLabels and expressions',
    labels: { ...K8S, 'app.kubernetes.io/version': '1.2.3' },
    selector: {
      matchLabels: { 'app.kubernetes.io/name': 'payments' },
      matchExpressions: [
        req('app.kubernetes.io/component', 'In', ['api', 'db']),
        req('app.kubernetes.io/version', 'NotIn', ['1.2.2']),
        req('app.kubernetes.io/part-of', 'DoesNotExist'),
      ],
    },
    matches: true,
  },
  {
    name: 'unusual valid values in In',
    labels: { build: 'A_b-C.9', long: V63 },
    selector: exprs(req('build', 'In', ['a_b-c.9', 'A_b-C.9']), req('long', 'In', [V63])),
    matches: true,
  },
];

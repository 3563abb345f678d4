// Metric names for the chart's alert and dashboard tests: those src/observability/metrics.ts
// registers, and those a PromQL expression reads.
import { createMetrics } from '../../../src/observability/metrics.ts';

/** Every series name readygate exports (a histogram's _bucket, _sum and _count too). */
export function exportedSeries(): Set<string> {
  const { registry } = createMetrics({ defaultMetrics: false });
  const names = new Set<string>();
  for (const m of registry.getMetricsAsArray()) {
    const { name, type } = m as unknown as { name: string; type: string };
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
    else names.add(name);
  }
  return names;
}

const KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'inf',
  'nan',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
]);

/**
 * The metric names a PromQL expression selects: the identifiers left once strings, label matchers,
 * range and subquery brackets, grouping clauses, dashboard variables and function calls are taken
 * out. Enough for the chart's own expressions, which a test keeps to readygate's metrics.
 */
export function metricNamesIn(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\{?\w+\}?/g, ' ');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const word = m[0];
    const isCall = /^\s*\(/.test(stripped.slice(m.index + word.length));
    // A number's exponent or unit (1e3, 5m) is not a name.
    const inNumber = /[0-9.]$/.test(stripped.slice(0, m.index));
    if (!isCall && !inNumber && !KEYWORDS.has(word.toLowerCase())) names.add(word);
  }
  return [...names];
}

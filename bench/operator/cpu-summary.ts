// Summarises a V8 CPU profile (.cpuprofile, from BENCH_OPERATOR_CPU_PROF=<dir>): self time by
// function and by area of the code, and inclusive time of the operator's own entry points.
//   node bench/operator/cpu-summary.ts <file.cpuprofile> [--top 25]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** The area a frame belongs to, for the per-area table. */
export function areaOf(url: string, name: string): string {
  if (name === '(garbage collector)') return 'GC';
  if (name === '(idle)') return 'idle';
  if (name === '(program)') return 'V8/native (program)';
  const src = /\/src\/([a-z-]+)\//.exec(url);
  if (src && !url.includes('node_modules')) return `src/${src[1]}`;
  const mod = /node_modules\/(@[^/]+\/[^/]+|[^/]+)\//.exec(url);
  if (mod) return `npm:${mod[1]}`;
  if (url.startsWith('node:'))
    return url.replace(/^node:internal\/([^/]+).*$/, 'node:$1').replace(/^node:([^/]+).*$/, 'node:$1');
  return url === '' ? 'native' : 'other';
}

/** Self time (ms) per key. */
function selfTimes(p: Profile, key: (n: ProfileNode) => string): Map<string, number> {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const out = new Map<string, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const node = byId.get(p.samples[i]!);
    if (!node) continue;
    const k = key(node);
    out.set(k, (out.get(k) ?? 0) + (p.timeDeltas[i] ?? 0) / 1000);
  }
  return out;
}

function table(rows: Map<string, number>, total: number, top: number): string {
  return [...rows.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k, ms]) => `${((100 * ms) / total).toFixed(1).padStart(5)} %  ${(ms / 1000).toFixed(1).padStart(7)} s  ${k}`)
    .join('\n');
}

function main(): void {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string' } } });
  const file = positionals[0];
  if (!file) throw new Error('usage: node bench/operator/cpu-summary.ts <file.cpuprofile> [--top N]');
  const top = Number(values.top ?? 25);
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const wall = (p.endTime - p.startTime) / 1000;
  const areas = selfTimes(p, (n) => areaOf(n.callFrame.url, n.callFrame.functionName));
  const busy = [...areas.entries()].filter(([k]) => k !== 'idle').reduce((a, [, ms]) => a + ms, 0);
  const short = (url: string) => url.replace(/^.*\/(src|node_modules)\//, '$1/');
  const fns = selfTimes(p, (n) => {
    const f = n.callFrame;
    return `${f.functionName || '(anonymous)'}  ${short(f.url)}:${f.lineNumber + 1}`;
  });
  console.log(`profile ${file}: ${(wall / 1000).toFixed(1)} s wall, ${(busy / 1000).toFixed(1)} s busy`);
  console.log(`\nself time by area (share of busy time):\n${table(areas, busy, top)}`);
  console.log(`\nself time by function (share of busy time):\n${table(fns, busy, top)}`);
}

if (import.meta.main) main();

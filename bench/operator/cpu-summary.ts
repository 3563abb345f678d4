// Summarises a V8 CPU profile (.cpuprofile, from BENCH_OPERATOR_CPU_PROF=<dir>): self time by
// function and by area of the code, and inclusive time of the operator's own functions (src/).
// --from/--to keep the samples between those seconds since the profile started (e.g. a steady
// window, leaving the start-up out).
//   node bench/operator/cpu-summary.ts <file.cpuprofile> [--top 25] [--from S] [--to S]
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

/** The samples taken between `fromS` and `toS` seconds after the profile started: [node id, ms]. */
export function windowed(p: Profile, fromS = 0, toS = Number.POSITIVE_INFINITY): [number, number][] {
  const out: [number, number][] = [];
  let t = 0;
  for (let i = 0; i < p.samples.length; i++) {
    t += (p.timeDeltas[i] ?? 0) / 1e6;
    if (t >= fromS && t < toS) out.push([p.samples[i]!, (p.timeDeltas[i] ?? 0) / 1000]);
  }
  return out;
}

/** Self time (ms) per key. */
function selfTimes(p: Profile, samples: [number, number][], key: (n: ProfileNode) => string): Map<string, number> {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const out = new Map<string, number>();
  for (const [id, ms] of samples) {
    const node = byId.get(id);
    if (!node) continue;
    const k = key(node);
    out.set(k, (out.get(k) ?? 0) + ms);
  }
  return out;
}

/** Inclusive time (ms) per key of the frames `keep` selects: each sample counts once per key on its stack. */
export function inclusiveTimes(
  p: Profile,
  samples: [number, number][],
  key: (n: ProfileNode) => string | undefined,
): Map<string, number> {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const out = new Map<string, number>();
  for (const [id, ms] of samples) {
    const seen = new Set<string>();
    // A stack is at most a few hundred frames deep; the bound guards a malformed profile.
    for (let at: number | undefined = id, depth = 0; at !== undefined && depth < 10_000; depth++) {
      const n = byId.get(at);
      const k = n && key(n);
      if (k !== undefined && !seen.has(k)) {
        seen.add(k);
        out.set(k, (out.get(k) ?? 0) + ms);
      }
      at = parent.get(at);
    }
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
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' } },
  });
  const file = positionals[0];
  if (!file)
    throw new Error('usage: node bench/operator/cpu-summary.ts <file.cpuprofile> [--top N] [--from S] [--to S]');
  const top = Number(values.top ?? 25);
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const samples = windowed(p, Number(values.from ?? 0), Number(values.to ?? Number.POSITIVE_INFINITY));
  const wall = samples.reduce((a, [, ms]) => a + ms, 0);
  const areas = selfTimes(p, samples, (n) => areaOf(n.callFrame.url, n.callFrame.functionName));
  const busy = [...areas.entries()].filter(([k]) => k !== 'idle').reduce((a, [, ms]) => a + ms, 0);
  const short = (url: string) => url.replace(/^.*\/(src|node_modules)\//, '$1/');
  const name = (f: ProfileNode['callFrame']) =>
    `${f.functionName || '(anonymous)'}  ${short(f.url)}:${f.lineNumber + 1}`;
  const fns = selfTimes(p, samples, (n) => name(n.callFrame));
  const own = inclusiveTimes(p, samples, (n) =>
    /\/src\//.test(n.callFrame.url) && !n.callFrame.url.includes('node_modules') ? name(n.callFrame) : undefined,
  );
  const span = values.from || values.to ? ` (samples from ${values.from ?? 0} s to ${values.to ?? 'the end'})` : '';
  console.log(`profile ${file}${span}: ${(wall / 1000).toFixed(1)} s wall, ${(busy / 1000).toFixed(1)} s busy`);
  console.log(`\nself time by area (share of busy time):\n${table(areas, busy, top)}`);
  console.log(`\nself time by function (share of busy time):\n${table(fns, busy, top)}`);
  console.log(`\ninclusive time of src/ functions (share of busy time):\n${table(own, busy, top)}`);
}

if (import.meta.main) main();

// The sharding growth chart (bench/operator/shard-growth.ts) and the chart drawing it shares with
// the operator's growth chart (bench/operator/svg-chart.ts).
import { describe, expect, it } from 'vitest';
import { shardGrowthPoints, shardGrowthSvg } from '../../../bench/operator/shard-growth.ts';
import type { ReplicaSetRun, ShardResult } from '../../../bench/operator/shard-run.ts';
import { defaultShardOptions } from '../../../bench/operator/shards.ts';
import { lineChartSvg, niceMax } from '../../../bench/operator/svg-chart.ts';
import { member, set } from './shard-fixtures.ts';

const result = (pods: number, sets: ReplicaSetRun[]): ShardResult => ({
  options: defaultShardOptions,
  runs: [
    { pods, namespace: 'ns', periodSeconds: pods / 400, steadySeconds: 60, createSeconds: 1, clearSeconds: null, sets },
  ],
  seconds: 1,
});

describe('shardGrowthPoints', () => {
  const three = set(
    [
      member('rg-0', 10_000, 10_000, { hwmMiB: 480 }),
      member('rg-1', 12_000, 10_000, { hwmMiB: 390 }),
      member('rg-2', 9_000, 10_000, { hwmMiB: 513.7 }),
    ],
    { allTrueSeconds: 824 },
  );

  it('takes the largest replica for RSS and CPU per probe, and sums the probe rates', () => {
    const [p] = shardGrowthPoints([{ file: 'a.json', result: result(150_000, [three]) }]);
    expect(p).toMatchObject({
      pods: 150_000,
      replicas: 3,
      peakRssMiB: 513.7,
      cpuPerProbeMs: 1.2,
      probesPerSecond: 300,
      allTrueSeconds: 824,
      file: 'a.json',
    });
  });

  it('lets a later file replace an earlier one at the same pod count and replicas, and sorts by pods', () => {
    const older = set([member('rg-solo', 1_000, 1_000, { hwmMiB: 700 })]);
    const newer = set([member('rg-solo', 1_000, 1_000, { hwmMiB: 800 })]);
    const points = shardGrowthPoints([
      { file: 'old.json', result: result(100_000, [older, three]) },
      { file: 'small.json', result: result(5_000, [set([member('rg-solo', 1, 1)])]) },
      { file: 'new.json', result: result(100_000, [newer]) },
    ]);
    expect(points.map((p) => [p.pods, p.replicas, p.file])).toEqual([
      [5_000, 1, 'small.json'],
      [100_000, 1, 'new.json'],
      [100_000, 3, 'old.json'],
    ]);
    expect(points[1]?.peakRssMiB).toBe(800);
  });

  it('has no CPU per probe when a replica had none (no probe in its window)', () => {
    const idle = member('rg-1', 1_000, 0, { steady: { ...member('x', 1, 1).steady, cpuPerProbeMs: null } });
    const [p] = shardGrowthPoints([{ file: 'a.json', result: result(50_000, [set([member('rg-0', 1, 1), idle])]) }]);
    expect(p?.cpuPerProbeMs).toBeNull();
  });
});

describe('shardGrowthSvg', () => {
  it('draws one series per replica count, labels the large sizes with their rate, and leaves unknown points out', () => {
    const points = shardGrowthPoints([
      { file: 'a.json', result: result(5_000, [set([member('rg-solo', 500, 1_000)])]) },
      { file: 'b.json', result: result(150_000, [set([member('rg-solo', 1_000, 1_000)], { allTrueSeconds: null })]) },
    ]);
    const svg = shardGrowthSvg(points, 'caption & more');
    expect(svg).toContain('>1 replica</text>');
    expect(svg).toContain('>1.00 at 10/s</text>');
    expect(svg).not.toContain('0.50 at'); // 5,000 pods: no label
    expect(svg).toContain('caption &amp; more');
    // The every-gate-True panel has one point (150,000 pods had none): one circle fewer there.
    expect(svg.match(/<circle /g)?.length).toBe(2 + 2 + 1);
    expect(svg).not.toContain('NaN');
  });
});

describe('lineChartSvg', () => {
  it('rounds axes up to a nice maximum', () => {
    expect([niceMax(0.5), niceMax(7), niceMax(150_000), niceMax(513.7 * 1.1)]).toEqual([1, 8, 150_000, 600]);
  });

  it('puts a label near the right edge to the left of its point, and names the goal in the legend', () => {
    const svg = lineChartSvg({
      title: 't',
      caption: 'c',
      xLabel: 'pods',
      panels: [
        {
          title: 'p',
          yLabel: 'MiB',
          series: [
            {
              name: 's',
              color: '#000',
              points: [
                [10, 1],
                [100, 2],
              ],
              labels: ['', 'end'],
            },
          ],
          goal: { value: 2, label: 'goal' },
        },
      ],
    });
    expect(svg).toMatch(/<text x="[\d.]+" text-anchor="end" y="[\d.]+" fill="#000">end<\/text>/);
    expect(svg).toContain('fill="#c00">goal</text>');
    expect(svg.match(/fill="#000">/g)?.length).toBe(1); // '' means no label
  });
});

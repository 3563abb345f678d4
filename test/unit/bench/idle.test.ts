import { describe, expect, it } from 'vitest';
import { cpuRate, threadCpu } from '../../../bench/operator/idle.ts';

describe("an idle replica's CPU by thread", () => {
  it('reads this process: a main thread, and the CPU it spent so far', () => {
    const before = threadCpu(process.pid);
    expect(before.has('main')).toBe(true);
    let x = 0;
    const until = performance.now() + 60;
    while (performance.now() < until) x += Math.sqrt(x + 1);
    expect(x).toBeGreaterThan(0);
    const after = threadCpu(process.pid);
    expect(after.get('main')!).toBeGreaterThanOrEqual(before.get('main')!);
  });

  it('gives ms of CPU per second by thread name and in total, leaving out threads that did not run', () => {
    const before = new Map([
      ['main', 1000],
      ['V8 DefaultWorke', 200],
      ['libuv-worker', 50],
    ]);
    const after = new Map([
      ['main', 1600],
      ['V8 DefaultWorke', 260],
      ['libuv-worker', 50],
      ['node', 10],
    ]);
    expect(cpuRate(before, after, 10)).toEqual({
      msPerSecond: 67,
      byThread: { main: 60, 'V8 DefaultWorke': 6, node: 1 },
    });
  });
});

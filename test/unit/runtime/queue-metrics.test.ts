// The client-go-compatible workqueue_* metrics of a WorkQueue, read from a real registry with a
// fake clock: adds, depth, time queued, time worked, work still running, retries; a shut-down
// queue leaves depth and running work at 0.
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../../src/observability/metrics.ts';
import { FakeClock } from '../../../src/runtime/clock.ts';
import { WorkQueue } from '../../../src/runtime/workqueue.ts';

function setup() {
  const clock = new FakeClock(0);
  const metrics = createMetrics({ defaultMetrics: false });
  const queue = new WorkQueue({ clock, name: 'pod', metricsProvider: metrics.workqueueMetrics });
  /** The value of a series labelled name="pod" (a histogram: its _sum or _count). */
  const value = async (metric: string, series = metric) =>
    (await metrics.registry.getSingleMetric(metric)!.get()).values.find(
      (v) => v.labels.name === 'pod' && ((v as { metricName?: string }).metricName ?? metric) === series,
    )?.value;
  return { clock, queue, value };
}

describe('workqueue metrics', () => {
  it('exports every series at 0 for a new queue', async () => {
    const { value } = setup();
    expect(await value('workqueue_depth')).toBe(0);
    expect(await value('workqueue_adds_total')).toBe(0);
    expect(await value('workqueue_retries_total')).toBe(0);
    expect(await value('workqueue_unfinished_work_seconds')).toBe(0);
    expect(await value('workqueue_longest_running_processor_seconds')).toBe(0);
    expect(await value('workqueue_queue_duration_seconds', 'workqueue_queue_duration_seconds_count')).toBe(0);
    expect(await value('workqueue_work_duration_seconds', 'workqueue_work_duration_seconds_count')).toBe(0);
  });

  it('counts adds and depth as client-go does: collapsed adds are not counted', async () => {
    const { queue, value } = setup();
    queue.add('a');
    queue.add('b');
    queue.add('a');
    expect(await value('workqueue_adds_total')).toBe(2);
    expect(await value('workqueue_depth')).toBe(2);
    const key = await queue.get();
    expect(key).toBe('a');
    expect(await value('workqueue_depth')).toBe(1);
    // Re-added while processing: dirty again, so counted in depth until handed out again.
    queue.add('a');
    expect(await value('workqueue_adds_total')).toBe(3);
    expect(await value('workqueue_depth')).toBe(2);
  });

  it('observes time queued and time worked, and reports work still running', async () => {
    const { clock, queue, value } = setup();
    queue.add('a');
    queue.add('b');
    clock.advance(2_000);
    await queue.get(); // a, queued 2 s
    clock.advance(3_000);
    await queue.get(); // b, queued 5 s
    expect(await value('workqueue_queue_duration_seconds', 'workqueue_queue_duration_seconds_sum')).toBe(7);
    expect(await value('workqueue_queue_duration_seconds', 'workqueue_queue_duration_seconds_count')).toBe(2);
    clock.advance(1_000);
    // a has run 4 s, b 1 s.
    expect(await value('workqueue_unfinished_work_seconds')).toBe(5);
    expect(await value('workqueue_longest_running_processor_seconds')).toBe(4);
    queue.done('a');
    expect(await value('workqueue_work_duration_seconds', 'workqueue_work_duration_seconds_sum')).toBe(4);
    expect(await value('workqueue_unfinished_work_seconds')).toBe(1);
    expect(await value('workqueue_longest_running_processor_seconds')).toBe(1);
  });

  it('counts every delayed and rate-limited add as a retry', async () => {
    const { queue, value } = setup();
    queue.addAfter('a', 1_000);
    queue.addRateLimited('b');
    queue.addAfter('c', 0);
    expect(await value('workqueue_retries_total')).toBe(3);
    // Only c is dirty: a and b still wait.
    expect(await value('workqueue_adds_total')).toBe(1);
  });

  it('leaves depth and running work at 0 once shut down and drained', async () => {
    const { clock, queue, value } = setup();
    queue.add('a');
    queue.add('b');
    await queue.get(); // a
    queue.add('a'); // dirty while processing
    clock.advance(1_000);
    const drained = queue.shutDownWithDrain();
    expect(await value('workqueue_depth')).toBe(0);
    queue.done('a');
    await drained;
    expect(await value('workqueue_unfinished_work_seconds')).toBe(0);
    expect(await value('workqueue_longest_running_processor_seconds')).toBe(0);
    expect(await value('workqueue_work_duration_seconds', 'workqueue_work_duration_seconds_count')).toBe(1);
  });

  it('refuses a metrics provider without a queue name', () => {
    const metrics = createMetrics({ defaultMetrics: false });
    expect(() => new WorkQueue({ metricsProvider: metrics.workqueueMetrics })).toThrow(/needs a name/);
  });
});

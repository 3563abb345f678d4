import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../../src/observability/metrics.ts';

describe('metrics', () => {
  it('registers every readygate metric and the default process metrics in a private registry', async () => {
    const m = createMetrics();
    const text = await m.registry.metrics();
    for (const name of [
      'readygate_probes_total',
      'readygate_probe_duration_seconds',
      'readygate_condition_patches_total',
      'readygate_gates_released_total',
      'readygate_api_errors_total',
      'readygate_workqueue_depth',
      'readygate_reconcile_duration_seconds',
      'readygate_failsafe_trips_total',
      'readygate_leader',
      'readygate_informer_restarts_total',
      'readygate_probe_crashes_total',
      'readygate_unexpected_errors_total',
      'process_cpu_user_seconds_total',
      'nodejs_eventloop_lag_seconds',
    ]) {
      expect(text).toContain(`# TYPE ${name} `);
    }
  });

  it('keeps registries independent', async () => {
    const a = createMetrics({ defaultMetrics: false });
    const b = createMetrics({ defaultMetrics: false });
    a.conditionPatchesTotal.inc({ result: 'success' });
    expect(await a.registry.getSingleMetricAsString('readygate_condition_patches_total')).toContain(
      'readygate_condition_patches_total{result="success"} 1',
    );
    expect(await b.registry.getSingleMetricAsString('readygate_condition_patches_total')).not.toContain(
      'result="success"',
    );
  });

  it('records labelled samples', async () => {
    const m = createMetrics({ defaultMetrics: false });
    m.probesTotal.inc({ policy: 'db', namespace: 'shop', result: 'failure' });
    m.probeDuration.observe({ policy: 'db', namespace: 'shop', handler: 'httpGet' }, 0.02);
    m.apiErrorsTotal.inc({ verb: 'patch', resource: 'pods/status', code: '409' });
    m.failsafeTripsTotal.inc({ policy: 'db', namespace: 'shop' });
    m.leader.set(1);
    m.probeCrashesTotal.inc({ handler: 'exec', kind: 'rejected' });
    m.unexpectedErrorsTotal.inc({ kind: 'uncaughtException' });
    const text = await m.registry.metrics();
    expect(text).toContain('readygate_probe_crashes_total{handler="exec",kind="rejected"} 1');
    expect(text).toContain('readygate_unexpected_errors_total{kind="uncaughtException"} 1');
    expect(text).toContain('readygate_probes_total{policy="db",namespace="shop",result="failure"} 1');
    expect(text).toContain(
      'readygate_probe_duration_seconds_bucket{le="0.025",policy="db",namespace="shop",handler="httpGet"} 1',
    );
    expect(text).toContain('readygate_api_errors_total{verb="patch",resource="pods/status",code="409"} 1');
    expect(text).toContain('readygate_failsafe_trips_total{policy="db",namespace="shop"} 1');
    expect(text).toContain('readygate_leader 1');
  });

  it('reads workqueue depth at scrape time and forgets unregistered queues', async () => {
    const m = createMetrics({ defaultMetrics: false });
    let depth = 3;
    const unregister = m.registerWorkqueue('pods', () => depth);
    m.registerWorkqueue('policies', () => 0);
    expect(await m.registry.getSingleMetricAsString('readygate_workqueue_depth')).toContain(
      'readygate_workqueue_depth{controller="pods"} 3',
    );
    depth = 7;
    expect(await m.registry.getSingleMetricAsString('readygate_workqueue_depth')).toContain(
      'readygate_workqueue_depth{controller="pods"} 7',
    );
    unregister();
    const text = await m.registry.getSingleMetricAsString('readygate_workqueue_depth');
    expect(text).not.toContain('controller="pods"');
    expect(text).toContain('controller="policies"');
  });

  it('controller hooks observe reconcile duration by controller and result', async () => {
    const m = createMetrics({ defaultMetrics: false });
    const hooks = m.controllerHooks();
    const request = { namespace: 'ns', name: 'a' };
    hooks.onReconcile?.({ controller: 'pods', request, outcome: 'success', durationSeconds: 0.2 });
    hooks.onReconcile?.({ controller: 'pods', request, outcome: 'error', durationSeconds: 1, error: new Error('x') });
    const text = await m.registry.getSingleMetricAsString('readygate_reconcile_duration_seconds');
    expect(text).toContain('readygate_reconcile_duration_seconds_count{controller="pods",result="success"} 1');
    expect(text).toContain('readygate_reconcile_duration_seconds_count{controller="pods",result="error"} 1');
  });

  it('counts informer restarts by reason', async () => {
    const m = createMetrics({ defaultMetrics: false });
    const onRestart = m.informerRestartHook('pods');
    onRestart('stall');
    onRestart('stall');
    expect(await m.registry.getSingleMetricAsString('readygate_informer_restarts_total')).toContain(
      'readygate_informer_restarts_total{informer="pods",reason="stall"} 2',
    );
  });

  it('starts the per-policy counters at 0 when a policy appears and removes its series when it goes', async () => {
    const m = createMetrics({ defaultMetrics: false });
    m.policyAdded('shop', 'db');
    m.policyAdded('shop', 'cache');
    const probes = await m.registry.getSingleMetricAsString('readygate_probes_total');
    for (const result of ['success', 'failure', 'error']) {
      expect(probes).toContain(`readygate_probes_total{policy="db",namespace="shop",result="${result}"} 0`);
    }
    const trips = await m.registry.getSingleMetricAsString('readygate_failsafe_trips_total');
    expect(trips).toContain('readygate_failsafe_trips_total{policy="db",namespace="shop",reason="Failsafe"} 0');
    expect(trips).toContain('readygate_failsafe_trips_total{policy="db",namespace="shop",reason="CouldNotLook"} 0');

    m.probesTotal.inc({ policy: 'db', namespace: 'shop', result: 'success' });
    m.policyAdded('shop', 'db'); // a second appearance keeps the count
    m.probeDuration.observe({ policy: 'db', namespace: 'shop', handler: 'tcpSocket' }, 0.01);
    expect(await m.registry.getSingleMetricAsString('readygate_probes_total')).toContain(
      'readygate_probes_total{policy="db",namespace="shop",result="success"} 1',
    );

    m.policyRemoved('shop', 'db');
    for (const name of [
      'readygate_probes_total',
      'readygate_failsafe_trips_total',
      'readygate_probe_duration_seconds',
    ]) {
      const text = await m.registry.getSingleMetricAsString(name);
      expect(text).not.toContain('policy="db"');
    }
    expect(await m.registry.getSingleMetricAsString('readygate_probes_total')).toContain('policy="cache"');
  });

  it('sets the per-policy pod gauges and removes them', async () => {
    const m = createMetrics({ defaultMetrics: false });
    m.setPolicyPods('shop', 'db', { matched: 5, ready: 3, failing: 2, ungated: 1 });
    m.setPolicyPods('shop', 'cache', { matched: 1, ready: 1, failing: 0 });
    const value = async (what: string, policy: string) =>
      (await m.registry.getSingleMetric(`readygate_policy_${what}_pods`)!.get()).values.find(
        (v) => v.labels.policy === policy && v.labels.namespace === 'shop',
      )?.value;
    expect(await value('matched', 'db')).toBe(5);
    expect(await value('ready', 'db')).toBe(3);
    expect(await value('failing', 'db')).toBe(2);
    expect(await value('ungated', 'db')).toBe(1);
    // Not counted (spec.injection Disabled): no ungated series, as the status has no ungatedPods.
    expect(await value('ungated', 'cache')).toBeUndefined();
    expect(await value('matched', 'cache')).toBe(1);

    m.forgetPolicyPods('shop', 'db');
    for (const what of ['matched', 'ready', 'failing', 'ungated']) expect(await value(what, 'db')).toBeUndefined();
    expect(await value('ready', 'cache')).toBe(1);
  });

  it('exports leader_election_master_status by lease name', async () => {
    const m = createMetrics({ defaultMetrics: false });
    m.leaderElectionMasterStatus.set({ name: 'readygate-leader' }, 1);
    expect(await m.registry.getSingleMetricAsString('leader_election_master_status')).toContain(
      'leader_election_master_status{name="readygate-leader"} 1',
    );
  });
});

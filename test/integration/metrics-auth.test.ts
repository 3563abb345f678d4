// Authenticated /metrics against the real API server: the operator runs under the chart's RBAC
// with metrics.auth.enabled (--metrics-auth), and checks each scraper's ServiceAccount token with a
// TokenReview and a SubjectAccessReview. A token bound to the chart's metrics-reader ClusterRole
// reads /metrics (200), another ServiceAccount's token is refused (403), no token is 401, and the
// kubelet's /healthz and /readyz stay open.
import { CoreV1Api, type KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { adminKubeConfig, createNamespace, deleteNamespace } from '../support/kube.ts';
import { type OperatorProcess, operatorKubeconfig, startOperator } from '../support/operator.ts';
import { eventually } from '../support/wait.ts';

const cp = () => inject('controlPlane');
const READER_ROLE = 'readygate-metrics-reader'; // <release>-metrics-reader; operatorKubeconfig's release is readygate
let kc: KubeConfig;
let ns: string;
let operator: OperatorProcess;
let binding: string;
const tokens: Record<string, string> = {};

async function scrape(path: string, token?: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`${operator.healthUrl}${path}`, {
    headers: token ? { Authorization: `Bearer ${token}` } : {},
  });
  return { status: res.status, body: await res.text() };
}

beforeAll(async () => {
  kc = adminKubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  ns = await createNamespace(kc, 'mauth');
  for (const name of ['prometheus', 'stranger']) {
    await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name } } });
    const t = await core.createNamespacedServiceAccountToken({
      name,
      namespace: ns,
      body: { spec: { audiences: [], expirationSeconds: 3600 } },
    });
    tokens[name] = t.status?.token ?? '';
  }
  binding = `${ns}-prometheus-metrics`;
  await kc.makeApiClient(RbacAuthorizationV1Api).createClusterRoleBinding({
    body: {
      metadata: { name: binding },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: READER_ROLE },
      subjects: [{ kind: 'ServiceAccount', name: 'prometheus', namespace: ns }],
    },
  });
  const config = await operatorKubeconfig(kc, cp(), ['metrics.auth.enabled=true']);
  operator = await startOperator(config, cp().dir, ['--namespaces', ns, '--metrics-auth']);
});

afterAll(async () => {
  await operator?.stop();
  await kc
    .makeApiClient(RbacAuthorizationV1Api)
    .deleteClusterRoleBinding({ name: binding })
    .catch(() => {});
  await deleteNamespace(kc, ns);
});

describe('authenticated /metrics', () => {
  it('keeps /healthz and /readyz open for the kubelet', async () => {
    expect((await scrape('/healthz')).status).toBe(200);
    await eventually(async () => expect((await scrape('/readyz')).status).toBe(200));
  });

  it('answers 401 without a token or with one the API server does not know', async () => {
    expect(await scrape('/metrics')).toEqual({ status: 401, body: 'Unauthorized: a bearer token is required\n' });
    expect((await scrape('/metrics', 'not-a-token')).status).toBe(401);
  });

  it('serves a ServiceAccount bound to the metrics-reader ClusterRole, and refuses another with 403', async () => {
    const allowed = await eventually(async () => {
      const r = await scrape('/metrics', tokens.prometheus);
      expect(r.status).toBe(200);
      return r;
    });
    expect(allowed.body).toContain('# TYPE readygate_probes_total counter');
    const refused = await scrape('/metrics', tokens.stranger);
    expect(refused.status).toBe(403);
    expect(refused.body).toBe(`Forbidden: user "system:serviceaccount:${ns}:stranger" may not get path "/metrics"\n`);
  });
});

// `helm lint --strict` (warnings fail) for the default values and each install mode.
import { describe, expect, it } from 'vitest';
import { CHART, helm, toolsDir } from './helm.ts';

const modes: Record<string, string[]> = {
  default: [],
  'namespace-scoped': ['watchNamespaces={shop,billing}'],
  'exec and secret CA enabled': ['exec.enabled=true', 'tls.allowSecretCA=true'],
  'configmap CA, custom condition prefixes': ['tls.allowConfigMapCA=true', 'conditions.allowedPrefixes={example.com/}'],
  'admission policy off': ['admissionPolicy.enabled=false'],
  'single replica without leader election': ['replicaCount=1', 'leaderElection.enabled=false'],
  'sharded, 3 replicas': ['sharding.enabled=true', 'replicaCount=3', 'sharding.buckets=32'],
  'network policy and service monitor': ['networkPolicy.enabled=true', 'metrics.serviceMonitor.enabled=true'],
  'pod monitor, alerts, dashboard, no CRD': [
    'metrics.podMonitor.enabled=true',
    'metrics.prometheusRule.enabled=true',
    'metrics.dashboard.enabled=true',
    'crds.enabled=false',
  ],
  'extension values': [
    'commonLabels.team=payments',
    'deploymentAnnotations.owner=platform',
    'extraVolumes[0].name=ca,extraVolumes[0].configMap.name=corp-ca',
    'extraVolumeMounts[0].name=ca,extraVolumeMounts[0].mountPath=/etc/ssl/corp',
    'podDisruptionBudget.maxUnavailable=1',
    'revisionHistoryLimit=2',
    'extraObjects[0].apiVersion=v1,extraObjects[0].kind=ConfigMap,extraObjects[0].metadata.name=extra',
  ],
};

describe('helm lint --strict', () => {
  for (const [mode, set] of Object.entries(modes)) {
    it(`passes with ${mode} values`, () => {
      toolsDir();
      const r = helm([
        'lint',
        '--strict',
        CHART,
        '--namespace',
        'readygate-system',
        ...set.flatMap((s) => ['--set', s]),
      ]);
      expect(r.stdout + r.stderr).toContain('1 chart(s) linted, 0 chart(s) failed');
      expect(r.stdout).not.toMatch(/\[(WARNING|ERROR)\]/);
      expect(r.status).toBe(0);
    }, 900_000);
  }
});

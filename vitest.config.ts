import { defineConfig } from 'vitest/config';

// Two projects: unit tests run anywhere; integration tests share one real control plane
// (etcd + kube-apiserver + kube-controller-manager) started once by the global setup.
export default defineConfig({
  test: {
    reporters: ['default'],
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 20_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/support/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          // One API server for all files; files run one at a time so they do not race on it.
          fileParallelism: false,
        },
      },
    ],
  },
});

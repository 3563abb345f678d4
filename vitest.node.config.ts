import { defineConfig } from 'vitest/config';

// Real-node tests (test/node/): their own control plane and a real node (containerd, runc, CNI,
// kubelet, kube-scheduler), started by their global setup. Run after the other projects, never
// at the same time (npm test): the machine has 2 cores and the node needs root.
export default defineConfig({
  test: {
    reporters: ['default'],
    name: 'node',
    include: ['test/node/**/*.test.ts'],
    globalSetup: ['test/support/node-global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    fileParallelism: false,
  },
});

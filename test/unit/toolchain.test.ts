import { describe, expect, it } from 'vitest';

describe('toolchain', () => {
  it('runs on the Node 24 that npm ci brought, not the machine Node', () => {
    expect(process.versions.node.startsWith('24.')).toBe(true);
    expect(process.versions.node).toMatch(/^24\.\d+\.\d+$/);
  });
});

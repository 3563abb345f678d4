// The chart ships a copy of the CRD (helm only installs CRDs from the chart's crds/ folder); the
// repository's crds/ file is the source of truth, and the copy must be byte-for-byte the same.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CHART, ROOT } from './helm.ts';

describe('the chart CRD copy', () => {
  it('is identical to crds/readygate.dev_probepolicies.yaml (fix: cp crds/*.yaml charts/readygate/crds/)', () => {
    const source = readFileSync(join(ROOT, 'crds/readygate.dev_probepolicies.yaml'));
    const copy = readFileSync(join(CHART, 'crds/readygate.dev_probepolicies.yaml'));
    expect(copy.equals(source)).toBe(true);
  });
});

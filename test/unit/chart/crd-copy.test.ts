// The chart ships a copy of the CRD in files/ (templates/crds.yaml renders it; helm cannot read
// outside the chart's directory); the repository's crds/ file is the source of truth, and the copy
// must be byte-for-byte the same.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CHART, ROOT } from './helm.ts';

describe('the chart CRD copy', () => {
  it('is identical to crds/readygate.dev_probepolicies.yaml (fix: cp crds/*.yaml charts/readygate/files/)', () => {
    const source = readFileSync(join(ROOT, 'crds/readygate.dev_probepolicies.yaml'));
    const copy = readFileSync(join(CHART, 'files/readygate.dev_probepolicies.yaml'));
    expect(copy.equals(source)).toBe(true);
  });
});

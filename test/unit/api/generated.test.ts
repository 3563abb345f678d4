import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderTypes, TYPES_PATH } from '../../../scripts/generate-types.ts';

describe('generated API types', () => {
  it('match what the CRD in crds/ generates (run `npm run generate` after editing the CRD)', async () => {
    expect(readFileSync(TYPES_PATH, 'utf8')).toBe(await renderTypes());
  });
});

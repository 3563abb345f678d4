import { ApiException } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { describeError, isNotFound, statusCode } from '../../../src/kube/errors.ts';

describe('statusCode', () => {
  it("is an ApiException's HTTP status", () => {
    expect(statusCode(new ApiException(404, 'x', '', {}))).toBe(404);
    expect(isNotFound(new ApiException(404, 'x', '', {}))).toBe(true);
  });

  it('is undefined for a timed-out or aborted call, whose DOMException has a numeric code of its own', () => {
    const timeout = new DOMException('The operation was aborted due to timeout', 'TimeoutError');
    expect(timeout.code).toBe(23);
    expect(statusCode(timeout)).toBeUndefined();
    expect(statusCode(new DOMException('aborted', 'AbortError'))).toBeUndefined();
    expect(describeError(timeout)).toBe('The operation was aborted due to timeout');
  });
});

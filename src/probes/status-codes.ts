// Parses `successCodes` ("200-399", "204") into inclusive ranges.
import { ProbeConfigError } from './types.ts';

export type StatusRanges = ReadonlyArray<readonly [number, number]>;

/** The kubelet's success rule (pkg/probe/http): 200 <= status < 400. */
export const DEFAULT_SUCCESS_CODES: StatusRanges = [[200, 399]];

/** Parses success code strings into ranges; throws ProbeConfigError on anything outside 100–599. */
export function parseSuccessCodes(codes: readonly string[] | undefined): StatusRanges {
  if (!codes || codes.length === 0) return DEFAULT_SUCCESS_CODES;
  return codes.map((code) => {
    const m = /^\s*(\d{3})\s*(?:-\s*(\d{3})\s*)?$/.exec(code);
    const lo = Number(m?.[1]);
    const hi = m?.[2] === undefined ? lo : Number(m[2]);
    if (!m || lo < 100 || hi > 599 || lo > hi) {
      throw new ProbeConfigError(
        `successCodes entry ${JSON.stringify(code)} is not a status code or range like 200-399`,
      );
    }
    return [lo, hi] as const;
  });
}

/** Reports whether `status` falls in any of the ranges. */
export function statusMatches(status: number, ranges: StatusRanges): boolean {
  for (const [lo, hi] of ranges) if (status >= lo && status <= hi) return true;
  return false;
}

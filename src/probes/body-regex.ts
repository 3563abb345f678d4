// Compiles a tenant's bodyRegex so that no body can stall the operator's event loop.
import { setFlagsFromString } from 'node:v8';
import { ProbeConfigError } from './types.ts';

// A backtracking regex on a hostile 10 KiB body (e.g. /^(a+)+$/) blocks the whole process for
// minutes. V8's linear-time engine (the `l` flag) has the same guarantee as Go's RE2, which the
// CRD's validation speaks; it is behind a flag that can be turned on at run time, before the
// first `l` regex is compiled. It rejects what RE2 rejects too (backreferences, lookahead).
setFlagsFromString('--enable-experimental-regexp-engine');

/** A compiled, linear-time matcher for the first 10 KiB of a response body. */
export interface BodyMatcher {
  readonly source: string;
  test(body: string): boolean;
}

/**
 * Compiles `source` (RE2-style; a leading inline flag group such as `(?i)` or `(?s)` becomes a
 * JS flag) into a linear-time matcher, or throws ProbeConfigError saying what is unsupported.
 */
export function compileBodyRegex(source: string): BodyMatcher {
  let pattern = source;
  let flags = 'l';
  let foldCase = false;
  const inline = /^\(\?([imsU]+)\)/.exec(pattern);
  if (inline) {
    for (const f of inline[1]!) {
      if (f === 'i') foldCase = true;
      else if (f !== 'U' && !flags.includes(f)) flags += f;
    }
    pattern = pattern.slice(inline[0].length);
  }
  // The linear engine has no `i` flag: case-insensitive matching lower-cases both sides instead.
  if (foldCase) pattern = lowerCaseLiterals(pattern);
  let re: RegExp;
  try {
    re = new RegExp(pattern, flags);
  } catch (err) {
    const why = (err as Error).message.includes('linear time')
      ? 'uses a feature that cannot be matched in linear time (backreference or lookahead)'
      : 'is not a valid regular expression';
    throw new ProbeConfigError(`bodyRegex ${JSON.stringify(source)} ${why}`);
  }
  return { source, test: foldCase ? (body) => re.test(body.toLowerCase()) : (body) => re.test(body) };
}

// Lower-cases a pattern's letters but not escapes (\D, \W, \S, \B keep their meaning).
function lowerCaseLiterals(pattern: string): string {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '\\' && i + 1 < pattern.length) {
      out += ch + pattern[++i];
    } else {
      out += ch.toLowerCase();
    }
  }
  return out;
}

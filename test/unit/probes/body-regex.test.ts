// bodyRegex on V8's linear-time engine: counted repetitions beyond its limit of 16 work (they are
// written out), and what cannot run in linear time is refused with a message that names it.
import { describe, expect, it } from 'vitest';
import { compileBodyRegex, MAX_EXPANDED_LENGTH, MAX_REPEAT } from '../../../src/probes/body-regex.ts';
import { ProbeConfigError } from '../../../src/probes/types.ts';

describe('compileBodyRegex: counted repetitions', () => {
  // Each pattern is checked against V8's ordinary (backtracking) engine on the same inputs.
  const cases: Array<[string, string[]]> = [
    ['^x{17}$', ['x'.repeat(16), 'x'.repeat(17), 'x'.repeat(18)]],
    ['^x{2,17}$', ['x', 'xx', 'x'.repeat(17), 'x'.repeat(18)]],
    ['^x{17,}$', ['x'.repeat(16), 'x'.repeat(17), 'x'.repeat(40)]],
    ['^x{0,20}?y$', ['y', `${'x'.repeat(20)}y`, `${'x'.repeat(21)}y`]],
    ['^(ab){20}$', ['ab'.repeat(19), 'ab'.repeat(20), `${'ab'.repeat(20)}a`]],
    ['^(?<digit>\\d){20}$', ['1'.repeat(20), '1'.repeat(19)]],
    ['^(?:a{20}){20}$', ['a'.repeat(400), 'a'.repeat(399)]],
    ['^[a-z]{3,40}@[a-z]{2,20}\\.com$', ['ops@example.com', 'op@example.com', `${'o'.repeat(41)}@x.com`]],
    ['^[\\]a]{17}$', [`${']a'.repeat(8)}]`, 'a'.repeat(16)]],
    ['^\\x41{17}$', ['A'.repeat(17), 'A'.repeat(16)]],
    ['^\\u0041{2}b{3}$', ['AAbbb', 'Abbb']],
    ['"status":\\s{0,30}"ok"', ['{"status":  "ok"}', '{"status":"degraded"}']],
    ['^a{,5}$', ['a{,5}', 'aaaaa']],
    ['^(a|bc){17}$', ['a'.repeat(17), 'bc'.repeat(17), 'a'.repeat(16)]],
    ['(?<=id=)\\d{17}', ['id=12345678901234567', 'id=1234']],
  ];

  it.each(cases)('%s matches as the ordinary engine does', (pattern, inputs) => {
    const m = compileBodyRegex(pattern);
    const reference = new RegExp(pattern);
    for (const input of inputs) expect(m.test(input), input).toBe(reference.test(input));
    expect(inputs.some((i) => m.test(i))).toBe(true);
  });

  it('works with the (?i) flag group', () => {
    expect(compileBodyRegex('(?i)^OK{17}$').test(`o${'K'.repeat(17)}`)).toBe(true);
    expect(compileBodyRegex('(?i)^OK{17}$').test(`o${'K'.repeat(16)}`)).toBe(false);
  });

  it(`accepts counts up to ${MAX_REPEAT}`, () => {
    expect(compileBodyRegex(`^a{${MAX_REPEAT}}$`).test('a'.repeat(MAX_REPEAT))).toBe(true);
  });

  it('still survives a catastrophic-backtracking pattern in linear time', () => {
    expect(compileBodyRegex('^(a+)+$').test(`${'a'.repeat(5000)}b`)).toBe(false);
  });
});

describe('compileBodyRegex: refusals name the reason', () => {
  const refused = (pattern: string): string => {
    try {
      compileBodyRegex(pattern);
    } catch (err) {
      expect(err).toBeInstanceOf(ProbeConfigError);
      return (err as Error).message;
    }
    throw new Error(`${pattern} was accepted`);
  };

  it.each([
    ['(a)\\1', /^bodyRegex "\(a\)\\\\1" uses a backreference \(\\1…\), which cannot be matched in linear time$/],
    ['(?<n>a)\\k<n>', /uses a backreference \(\\k…\)/],
    ['a(?=b)', /uses a lookahead \(\(\?=…\), which cannot be matched in linear time/],
    ['a(?!b)', /uses a lookahead \(\(\?!…\)/],
    [`a{${MAX_REPEAT + 1}}`, /repeats more than 1000 times \(\{1001\}\)/],
    [`a{2,${MAX_REPEAT + 1}}`, /repeats more than 1000 times/],
    ['(?:abcdefghij){1000}', new RegExp(`longer than ${MAX_EXPANDED_LENGTH} characters`)],
    ['((a{100}){100}){100}', /longer than/],
    ['[a-z]{0,256}b', /longer than 1024 characters once its counted repetitions are written out; use smaller counts$/],
    ['x{5,2}', /not a valid regular expression \(numbers out of order in \{5,2\}\)/],
    ['x{3}{2}', /not a valid regular expression \(nothing to repeat\)/],
    ['(', /is not a valid regular expression$/],
    ['a)', /is not a valid regular expression$/],
    ['*a', /is not a valid regular expression$/],
  ])('%s', (pattern, message) => {
    expect(refused(pattern)).toMatch(message);
  });
});

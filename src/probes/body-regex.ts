// Compiles a tenant's bodyRegex so that no body can stall the operator's event loop.
import { setFlagsFromString } from 'node:v8';
import { ProbeConfigError } from './types.ts';

// A backtracking regex on a hostile 10 KiB body (e.g. /^(a+)+$/) blocks the whole process for
// minutes. V8's linear-time engine (the `l` flag) has the same guarantee as Go's RE2; it is
// behind a flag that can be turned on at run time, before the first `l` regex is compiled.
// Like RE2 it cannot run backreferences or lookahead; unlike RE2 it also refuses a counted
// repetition above 16 (x{17}), because it copies the repeated part once per count. Counted
// repetitions are therefore written out here (x{3,5} → xxxx?x?), within RE2's limits.
setFlagsFromString('--enable-experimental-regexp-engine');

/** RE2's (and Go's) largest repetition count. */
export const MAX_REPEAT = 1000;
/**
 * Longest pattern once counted repetitions are written out: the CRD's maxLength for bodyRegex,
 * so writing them out never costs more than a pattern a tenant could type. The linear engine's
 * cost per body byte grows with the pattern (1,024 characters of `a?` took ~1 s per 10 KiB
 * body here, against 12 ms for a{1000}).
 */
export const MAX_EXPANDED_LENGTH = 1024;

/** A compiled, linear-time matcher for the first 10 KiB of a response body. */
export interface BodyMatcher {
  readonly source: string;
  test(body: string): boolean;
}

/**
 * Compiles `source` (JavaScript syntax; a leading inline flag group such as `(?i)` or `(?s)`
 * becomes a JS flag) into a linear-time matcher, or throws ProbeConfigError saying what is
 * unsupported.
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
    re = new RegExp(new Expander(pattern).expand(), flags);
  } catch (err) {
    const why =
      err instanceof Unsupported
        ? err.message
        : (err as Error).message.includes('linear time')
          ? 'uses a construct that cannot be matched in linear time (e.g. an inline flag group such as (?i:…))'
          : 'is not a valid regular expression';
    throw new ProbeConfigError(`bodyRegex ${JSON.stringify(source)} ${why}`);
  }
  return { source, test: foldCase ? (body) => re.test(body.toLowerCase()) : (body) => re.test(body) };
}

// *, +, ?, {n}, {n,} or {n,m}, each optionally lazy (a trailing ?).
const QUANTIFIER = /^(?:([*+?])|\{(\d+)(?:(,)(\d*))?\})\??/;

/** A construct the linear engine cannot run, found before V8 sees the pattern. */
class Unsupported extends Error {}

interface Atom {
  text: string;
  /** False for assertions (^, $, \b, lookbehind), which take no quantifier. */
  repeatable: boolean;
}

/**
 * Rewrites a pattern for the linear engine: counted repetitions written out, capturing groups
 * made non-capturing (only test() is ever called, and with no backreferences captures change
 * nothing; copies of a named group would clash). Backreferences and lookahead are refused
 * here, with a message that names them.
 */
class Expander {
  #pos = 0;
  readonly #p: string;

  constructor(pattern: string) {
    this.#p = pattern;
  }

  expand(): string {
    const out = this.#alternation();
    // An unmatched ")" is left in place for V8 to reject.
    return this.#pos < this.#p.length ? out + this.#p.slice(this.#pos) : out;
  }

  #alternation(): string {
    let out = '';
    while (this.#pos < this.#p.length && this.#p[this.#pos] !== ')') {
      if (this.#p[this.#pos] === '|') {
        out += '|';
        this.#pos++;
        continue;
      }
      const atom = this.#atom();
      out += atom.repeatable ? this.#quantified(atom.text) : atom.text;
      if (out.length > MAX_EXPANDED_LENGTH) throw tooLong();
    }
    return out;
  }

  #atom(): Atom {
    const p = this.#p;
    const c = p[this.#pos]!;
    if (c === '^' || c === '$') {
      this.#pos++;
      return { text: c, repeatable: false };
    }
    if (c === '\\') return this.#escape();
    if (c === '[') return { text: this.#take(classLength(p, this.#pos)), repeatable: true };
    if (c === '(') return this.#group();
    return { text: this.#take(1), repeatable: true };
  }

  #escape(): Atom {
    const p = this.#p;
    const next = p[this.#pos + 1] ?? '';
    if (/[1-9]/.test(next) || next === 'k') {
      throw new Unsupported(`uses a backreference (\\${next}…), which cannot be matched in linear time`);
    }
    const sized = /^\\(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|c[A-Za-z]|0[0-7]{0,2})/.exec(p.slice(this.#pos));
    const text = this.#take(sized ? sized[0].length : Math.min(2, p.length - this.#pos));
    return { text, repeatable: text !== '\\b' && text !== '\\B' };
  }

  #group(): Atom {
    const p = this.#p;
    const rest = p.slice(this.#pos);
    if (rest.startsWith('(?=') || rest.startsWith('(?!')) {
      throw new Unsupported(`uses a lookahead (${rest.slice(0, 3)}…), which cannot be matched in linear time`);
    }
    const open = /^\((?:\?(?:<[=!]|<[A-Za-z_$][\w$]*>|[a-zA-Z-]*:))?/.exec(rest)![0];
    this.#pos += open.length;
    const lookbehind = open.startsWith('(?<=') || open.startsWith('(?<!');
    // Plain and named captures become non-capturing; (?: , lookbehind and (?flags: stay.
    const head = open === '(' || (open.startsWith('(?<') && !lookbehind) ? '(?:' : open;
    const body = this.#alternation();
    if (p[this.#pos] !== ')') return { text: head + body, repeatable: false }; // unterminated: V8 rejects
    this.#pos++;
    return { text: `${head + body})`, repeatable: !lookbehind };
  }

  /** Reads the quantifier after an atom, if any, and returns the atom with it applied. */
  #quantified(atom: string): string {
    const q = QUANTIFIER.exec(this.#p.slice(this.#pos));
    if (!q) return atom;
    this.#pos += q[0].length;
    // x{3}{2} is a syntax error; written out, it would read as xxx{2}.
    if (QUANTIFIER.test(this.#p.slice(this.#pos))) {
      throw new Unsupported('is not a valid regular expression (nothing to repeat)');
    }
    // Laziness does not change whether a pattern matches, and test() is all that is asked.
    if (q[1]) return atom + q[1];
    const min = Number(q[2]);
    const max = q[3] === undefined ? min : q[4] === '' ? Number.POSITIVE_INFINITY : Number(q[4]);
    if (min > MAX_REPEAT || (max !== Number.POSITIVE_INFINITY && max > MAX_REPEAT)) {
      throw new Unsupported(`repeats more than ${MAX_REPEAT} times ({${q[2]}${q[3] ?? ''}${q[4] ?? ''}})`);
    }
    if (max < min) throw new Unsupported(`is not a valid regular expression (numbers out of order in {${min},${max}})`);
    const optional = max === Number.POSITIVE_INFINITY ? 1 : max - min;
    if (atom.length * (min + optional) + optional > MAX_EXPANDED_LENGTH) throw tooLong();
    // x{2,4} → xxx?x?, and x{2,} → xxx*: the same strings, with no count for V8 to copy.
    const tail = max === Number.POSITIVE_INFINITY ? `${atom}*` : `${atom}?`.repeat(optional);
    return atom.repeat(min) + tail;
  }

  #take(n: number): string {
    const s = this.#p.slice(this.#pos, this.#pos + n);
    this.#pos += n;
    return s;
  }
}

function tooLong(): Unsupported {
  return new Unsupported(
    `is longer than ${MAX_EXPANDED_LENGTH} characters once its counted repetitions are written out; use smaller counts`,
  );
}

// Length of the character class starting at `start` ("[" … "]"), escapes included. In
// JavaScript the first "]" closes it, even right after "[" or "[^" ([] matches nothing).
function classLength(p: string, start: number): number {
  let i = start + 1;
  while (i < p.length && p[i] !== ']') i += p[i] === '\\' ? 2 : 1;
  return Math.min(i + 1, p.length) - start;
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

// Text from the cluster on the user's terminal: a condition message, a name or an API error can
// carry escape sequences (set the window title, rewrite the screen, fake a line of output), so
// every control character is shown as an escape instead of being sent to the terminal.

// C0 (newline and tab included), DEL, C1 (0x9b is a one-byte CSI), line and paragraph
// separators, and the bidi controls that reorder how a line reads.
const UNSAFE = /[\p{Cc}\u2028\u2029\u202a-\u202e\u2066-\u2069]/gu;

/** Shows control characters as \xNN or \uNNNN, so that `text` prints as exactly one line. */
export function printable(text: string): string {
  return text.replace(UNSAFE, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/**
 * JSON.stringify escapes C0 but passes DEL, C1 and the bidi controls through; those can only sit
 * inside strings, where \uNNNN is the same character to a JSON reader.
 */
export function printableJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(
    /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

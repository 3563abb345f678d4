// Exit codes of the command line, documented in the README. A module of its own so that the
// dispatcher (src/cli/main.ts) and each command share them without loading one another.
export const EXIT = { ok: 0, failed: 1, usage: 2, cluster: 3 } as const;

// Exit codes of the command line, documented in the README. A module of its own so that the
// dispatcher (src/cli/main.ts) and each command share them without loading one another.
// usage (2) is any invalid input: bad flags, an unreadable or non-YAML file, a ProbePolicy the
// API server would refuse (`readygate check` never reports a bad spec as a failed probe).
export const EXIT = { ok: 0, failed: 1, usage: 2, cluster: 3 } as const;

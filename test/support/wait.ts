// Polling for integration tests: behaviour is asserted, never speed, so the deadline is generous.

/** Retries fn until it stops throwing (returning its value) or the deadline passes (rethrowing the last error). */
export async function eventually<T>(fn: () => Promise<T> | T, timeoutMs = 30_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }
}

/**
 * Gives the event loop turns (I/O included, no poll interval) until cond() holds or the deadline
 * passes; returns whether it holds. For unit tests whose I/O is on loopback: the deadline is in
 * time, not in turns, so a loaded machine that needs longer for that I/O only makes it slower.
 */
export async function turnsUntil(cond: () => boolean, timeoutMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setImmediate(r));
  return cond();
}

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

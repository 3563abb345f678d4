// SIGINT or SIGTERM to the benchmark stops what it started, newest first, as its finally blocks
// would have (operator, listener farm, control plane), then exits 128 + the signal's number.
// Without it the benchmark died at once and left its operator running (the control plane's
// reaper only knows the control plane). A second signal exits at once; the reapers
// (test/support/reaper.ts, one per operator and one per control plane) kill what is left.

const SIGNAL_NUMBER = { SIGINT: 2, SIGTERM: 15 } as const;

export interface Interrupts {
  /** Registers how to stop something on interrupt; returns a function that unregisters it. */
  add(name: string, stop: () => Promise<void>): () => void;
  /** Removes the signal handlers (the benchmark ended normally). */
  dispose(): void;
}

/** Installs SIGINT and SIGTERM handlers that stop what was registered, then exit. */
export function stopOnInterrupt(log: (m: string) => void, exit: (code: number) => never = process.exit): Interrupts {
  const stops = new Map<symbol, { name: string; stop: () => Promise<void> }>();
  let interrupted = false;
  const onSignal = (signal: keyof typeof SIGNAL_NUMBER): void => {
    const code = 128 + SIGNAL_NUMBER[signal];
    if (interrupted) exit(code);
    interrupted = true;
    const pending = [...stops.values()].reverse();
    log(`${signal}: stopping ${pending.map((p) => p.name).join(', ') || 'nothing'} before exiting`);
    void (async () => {
      for (const { name, stop } of pending) {
        await stop().catch((err: unknown) => log(`${signal}: stopping ${name} failed: ${String(err)}`));
      }
      exit(code);
    })();
  };
  const onInt = () => onSignal('SIGINT');
  const onTerm = () => onSignal('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  return {
    add: (name, stop) => {
      const key = Symbol(name);
      stops.set(key, { name, stop });
      return () => stops.delete(key);
    },
    dispose: () => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
    },
  };
}

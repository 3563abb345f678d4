// The tarpit scenario of the probe benchmark: 256 HTTP targets in one namespace that accept and
// never answer (timeout 60 s, the CRD's maximum) next to victims in another namespace, on the
// real clock and loopback. Three phases of the same length, one after the other, each with a
// fresh scheduler at the operator's default concurrency (256):
//   baseline  victims alone;
//   tarpit    victims and tarpit, each with its tenant (src/probes/fair-queue.ts);
//   shared    the same, but no tenants: one shared queue, as before fair sharing.
// Reports the victims' start lateness (RunTiming.lateMs) and how many of their due runs ran.

import { createHttpProber } from '../../src/probes/http.ts';
import { leanExchange } from '../../src/probes/http-exchange.ts';
import { ProbeScheduler, type RunTiming } from '../../src/probes/scheduler.ts';
import type { ProbeResult } from '../../src/probes/types.ts';

export interface Address {
  host: string;
  port: number;
}

export interface TarpitOptions {
  http: Address[];
  tarpit: Address[];
  /** Length of each phase. */
  seconds: number;
  /** Drops every tarpit connection in the farm, so the previous phase's probes end. */
  resetTarpit: () => void;
  victims?: number;
  tarpits?: number;
  concurrency?: number;
}

export interface PhaseFigures {
  phase: 'baseline' | 'tarpit' | 'shared';
  /** Victim runs finished. */
  runs: number;
  /** Victim runs due in the phase (victims × seconds / period). */
  due: number;
  /** Due times victims skipped because their previous run was still queued or running. */
  skipped: number;
  p50: number;
  p99: number;
  max: number;
  /** Most tarpit probes in flight at once during the phase. */
  tarpitMaxInFlight: number;
}

const VICTIM_PERIOD_MS = 1000;
const TARPIT_TIMEOUT_MS = 60_000;
const TARPIT_PERIOD_MS = 61_000;

const realClock = {
  now: Date.now,
  setTimeout: (fn: () => void, ms: number) => setTimeout(fn, ms),
  clearTimeout: (h: unknown) => clearTimeout(h as NodeJS.Timeout),
};

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] ?? Number.NaN;
}

/** Runs the three phases; see the module comment. */
export async function tarpitScenario(opts: TarpitOptions): Promise<PhaseFigures[]> {
  const out: PhaseFigures[] = [];
  for (const phase of ['baseline', 'tarpit', 'shared'] as const) out.push(await runPhase(phase, opts));
  return out;
}

async function runPhase(phase: PhaseFigures['phase'], opts: TarpitOptions): Promise<PhaseFigures> {
  const victims = opts.victims ?? 200;
  const tarpits = phase === 'baseline' ? 0 : (opts.tarpits ?? 256);
  const tenants = phase !== 'shared';
  const prober = createHttpProber({ port: 0, path: '/ready', bodyRegex: '"status":"ok"' }, { exchange: leanExchange });
  const timings: RunTiming[] = [];
  let pendingTarpit = 0;
  let tarpitMax = 0;
  const scheduler = new ProbeScheduler({
    clock: realClock,
    concurrency: opts.concurrency ?? 256,
    onResult: (key, _result, timing) => {
      if (key.startsWith('shop/')) timings.push(timing);
    },
  });
  const trackTarpit = (p: Promise<ProbeResult>): Promise<ProbeResult> => {
    pendingTarpit++;
    tarpitMax = Math.max(tarpitMax, pendingTarpit);
    return p.finally(() => {
      pendingTarpit--;
    });
  };
  // New pods: the tarpit's first probes go out at once, as the operator does for a pod that just got its IP.
  for (let i = 0; i < tarpits; i++) {
    const t = opts.tarpit[i % opts.tarpit.length]!;
    scheduler.upsert({
      key: `tarpit/slow#${i}`,
      periodMs: TARPIT_PERIOD_MS,
      timeoutMs: TARPIT_TIMEOUT_MS,
      immediate: true,
      run: () => trackTarpit(prober.probe({ host: t.host, port: t.port, timeoutMs: TARPIT_TIMEOUT_MS })),
      ...(tenants ? { tenant: { namespace: 'tarpit', policy: 'slow' } } : {}),
    });
  }
  for (let i = 0; i < victims; i++) {
    const t = opts.http[i % opts.http.length]!;
    scheduler.upsert({
      key: `shop/db#${i}`,
      periodMs: VICTIM_PERIOD_MS,
      timeoutMs: 900,
      run: () => prober.probe({ host: t.host, port: t.port, timeoutMs: 900 }),
      ...(tenants ? { tenant: { namespace: 'shop', policy: 'db' } } : {}),
    });
  }
  await new Promise((r) => setTimeout(r, opts.seconds * 1000));
  scheduler.stop();
  // The tarpit's probes outlive the scheduler (HTTP probes end at their own timeout): drop their
  // connections and wait, with a deadline, until every one has ended.
  opts.resetTarpit();
  const deadline = Date.now() + 10_000;
  while (pendingTarpit > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  if (pendingTarpit > 0) throw new Error(`${pendingTarpit} tarpit probes still pending 10 s after the reset`);
  const late = timings.map((t) => t.lateMs).sort((a, b) => a - b);
  return {
    phase,
    runs: timings.length,
    due: Math.round((victims * opts.seconds * 1000) / VICTIM_PERIOD_MS),
    skipped: timings.reduce((a, t) => a + t.skipped, 0),
    p50: quantile(late, 0.5),
    p99: quantile(late, 0.99),
    max: late[late.length - 1] ?? Number.NaN,
    tarpitMaxInFlight: tarpitMax,
  };
}

/** The scenario's figures as Markdown table rows. */
export function tarpitTable(rows: PhaseFigures[]): string {
  const lines = [
    '| phase | victim runs / due | skipped | lateness p50 ms | p99 ms | max ms | tarpit probes in flight, most |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of rows) {
    const ms = (x: number): string => (r.runs === 0 ? 'no run' : String(x));
    lines.push(
      `| ${r.phase} | ${r.runs} / ${r.due} | ${r.skipped} | ${ms(r.p50)} | ${ms(r.p99)} | ${ms(r.max)} | ${r.tarpitMaxInFlight} |`,
    );
  }
  return lines.join('\n');
}

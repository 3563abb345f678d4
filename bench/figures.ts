// The figures that `npm run bench` prints and writes. Every benchmark adds rows here: the probe
// engine (bench/engine.ts) does, and so does every module in bench/figures/ (operator-level
// figures: start-up at N pods, steady-state writes, mass flip, single flip latency, ...), which
// bench/run.ts loads and runs after the engine. Such a module default-exports a FigureSource.
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/** One line of the results table. */
export interface FigureRow {
  /** What is measured, as docs/benchmarks.md's table names it, e.g. "CPU per 1,000 HTTP probes". */
  figure: string;
  /** readygate's own figure. */
  value: number | null;
  unit: string;
  /** The same figure for peers measured in the same run, by peer name. */
  peers?: Record<string, number>;
  /** readygate ÷ peer, by peer name. */
  ratios?: Record<string, number>;
  /** The goal in docs/benchmarks.md, in words, e.g. "≤ 1.0 × kubelet". */
  goal?: string;
  /** Whether the goal is met; absent when there is no goal or it cannot be judged. */
  met?: boolean;
  note?: string;
  /** The module that produced the row. */
  source: string;
}

/** Every row of this run, in the order they were added. */
export const figures: FigureRow[] = [];

/** Appends a row to the results table. */
export function addFigure(row: FigureRow): void {
  figures.push(row);
}

/** What a figure source gets from bench/run.ts. */
export interface BenchContext {
  /** Small N, one repetition: proves the benchmark runs; its figures are not published. */
  quick: boolean;
  /** Directory of the Go peers (scripts/build-bench-peers.sh). */
  peersDir: string;
  /** Repository root. */
  root: string;
  log: (message: string) => void;
  /** Free-form results a source wants in the JSON file, under its name. */
  details: Record<string, unknown>;
}

/** A benchmark that adds rows with addFigure (and may put raw data in ctx.details). */
export interface FigureSource {
  name: string;
  run: (ctx: BenchContext) => Promise<void>;
}

/** Loads the default-exported FigureSource of every .ts module in `dir`, sorted by file name. */
export async function loadFigureSources(dir: string): Promise<FigureSource[]> {
  let files: string[];
  try {
    files = (await readdir(dir)).filter((f) => f.endsWith('.ts')).sort();
  } catch {
    return [];
  }
  const sources: FigureSource[] = [];
  for (const f of files) {
    const mod = (await import(pathToFileURL(path.join(dir, f)).href)) as { default?: FigureSource };
    if (!mod.default || typeof mod.default.run !== 'function') {
      throw new Error(`${f} in ${dir} must default-export a FigureSource ({ name, run })`);
    }
    sources.push(mod.default);
  }
  return sources;
}

// scripts/stage-runtime.sh lays out what the image's runtime stage holds (/app): compiled dist/,
// package.json, crds/ and production dependencies only. This runs it into a temp dir and checks that
// no development dependency ships, that every runtime dependency loads, and (once the entry point
// exists) that the staged operator starts, and that an older Node.js gets a clear refusal.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unsupportedNode } from '../../../src/node-version.ts';
import { ROOT } from './helm.ts';

interface Lock {
  packages: Record<string, { dev?: boolean; devOptional?: boolean }>;
}
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

let dir: string;
let stage: string;

/**
 * A Node.js too old for readygate from PATH outside node_modules: the machine's own, which runs
 * `npm ci` before the `node` package brings Node 24 (.ci/run prints its version first).
 */
function olderNode(): { path: string; version: string } | undefined {
  for (const d of (process.env.PATH ?? '').split(delimiter)) {
    if (!d || d.includes('node_modules')) continue;
    const path = join(d, 'node');
    if (!existsSync(path)) continue;
    const r = spawnSync(path, ['--version'], { encoding: 'utf8', timeout: 30_000 });
    const version = r.stdout?.trim() ?? '';
    if (r.status === 0 && unsupportedNode(version)) return { path, version };
  }
  return undefined;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'readygate-stage-'));
  stage = join(dir, 'app');
  const r = spawnSync('bash', [join(ROOT, 'scripts/stage-runtime.sh'), stage], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`stage-runtime.sh failed (${r.status}):\n${r.stderr}`);
  expect(r.stdout.trim().split('\n').at(-1)).toBe(stage);
}, 600_000);
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the staged runtime (the image /app)', () => {
  it('holds exactly dist/, crds/, package.json, package-lock.json and node_modules/', () => {
    expect(readdirSync(stage).sort()).toEqual(['crds', 'dist', 'node_modules', 'package-lock.json', 'package.json']);
    expect(existsSync(join(stage, 'dist/version.js'))).toBe(true);
    // Compiled output only: no TypeScript sources and no tests.
    const files = readdirSync(join(stage, 'dist'), { recursive: true }).map(String);
    expect(files.filter((f) => f.endsWith('.ts') || f.includes('test'))).toEqual([]);
    expect(readFileSync(join(stage, 'crds/readygate.dev_probepolicies.yaml'))).toEqual(
      readFileSync(join(ROOT, 'crds/readygate.dev_probepolicies.yaml')),
    );
  });

  it('ships no development dependency', () => {
    for (const name of ['typescript', 'vitest', '@biomejs/biome', 'json-schema-to-typescript', 'node', '@types/ws']) {
      expect(existsSync(join(stage, 'node_modules', name)), name).toBe(false);
    }
    // Everything npm installed is reachable from a production dependency in the project's lockfile.
    const staged = JSON.parse(readFileSync(join(stage, 'node_modules/.package-lock.json'), 'utf8')) as Lock;
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as Lock;
    const devOnly = Object.keys(staged.packages).filter((p) => lock.packages[p]?.dev === true);
    expect(devOnly).toEqual([]);
    expect(Object.keys(staged.packages).length).toBeGreaterThan(0);
  });

  it('loads every production dependency', () => {
    const deps = Object.keys(pkg.dependencies);
    const script = `for (const d of ${JSON.stringify(deps)}) await import(d);`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: stage, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('starts: node dist/main.js --version (once the entry point exists)', () => {
    const main = join(stage, 'dist/main.js');
    if (!existsSync(main)) {
      console.log('dist/main.js is not in the build yet; only the layout was checked');
      return;
    }
    const r = spawnSync(process.execPath, [main, '--version'], { cwd: stage, encoding: 'utf8', timeout: 30_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain(pkg.version);
    expect(r.status).toBe(0);
  });

  it('on an older Node.js: one line naming the version needed, exit code 2, before any dependency loads', () => {
    const old = olderNode();
    if (!old) {
      // CI machines have one (see olderNode); elsewhere the machine's Node may be 24 already.
      if (process.env.CI) throw new Error('CI: no Node.js older than 24 on PATH outside node_modules');
      console.log('no Node.js older than 24 on PATH outside node_modules; the refusal was not run');
      return;
    }
    for (const args of [['version'], ['run'], ['--help']]) {
      const r = spawnSync(old.path, [join(stage, 'dist/main.js'), ...args], {
        cwd: stage,
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect(r.stderr, args.join(' ')).toBe(`readygate needs Node.js 24 or later (found ${old.version})\n`);
      expect(r.stdout).toBe('');
      expect(r.status).toBe(2);
    }
  });

  it('version --output json', () => {
    const r = spawnSync(process.execPath, [join(stage, 'dist/main.js'), 'version', '-o', 'json'], {
      cwd: stage,
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ version: pkg.version, node: process.versions.node });
    expect(r.status).toBe(0);
  });
});

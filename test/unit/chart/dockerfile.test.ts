// The image recipe, read as data: a distroless non-root runtime stage that runs `node dist/main.js`
// and holds only the compiled operator, production dependencies, package.json and the CRD; a build
// context limited by .dockerignore to what the stages copy; and, when the dockerfile-utils linter
// is installed, a clean lint. (The image itself is built by scripts/build-image.sh and run by
// test/integration/image.test.ts.)
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helm.ts';

interface Instruction {
  keyword: string;
  args: string;
}
interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');

/** Instructions in order (comments dropped, continuation lines joined), split into global ARGs and stages. */
function parseDockerfile(source: string): { globals: Instruction[]; stages: Stage[] } {
  const logical: string[] = [];
  let current = '';
  for (const raw of source.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#') || (line === '' && current === '')) continue;
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1).trim()} `;
      continue;
    }
    logical.push((current + line).trim());
    current = '';
  }
  const globals: Instruction[] = [];
  const stages: Stage[] = [];
  for (const l of logical.filter(Boolean)) {
    const [keyword = '', ...rest] = l.split(/\s+/);
    const ins = { keyword: keyword.toUpperCase(), args: rest.join(' ') };
    if (ins.keyword === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      stages.push({ from: m?.[1] ?? '', name: m?.[2], instructions: [] });
    } else if (stages.length === 0) {
      globals.push(ins);
    } else {
      stages.at(-1)!.instructions.push(ins);
    }
  }
  return { globals, stages };
}

const { globals, stages } = parseDockerfile(text);
const runtime = stages.at(-1)!;
const all = (stage: Stage, keyword: string) => stage.instructions.filter((i) => i.keyword === keyword);
const argDefault = (name: string) => globals.find((g) => g.args.startsWith(`${name}=`))?.args.slice(name.length + 1);

describe('Dockerfile', () => {
  it('builds on node:24-bookworm-slim and runs on distroless nodejs24 nonroot, the Node major of engines', () => {
    expect(stages.map((s) => `${s.name} ${s.from}`)).toEqual([
      `build \${BUILD_IMAGE}`,
      `deps \${BUILD_IMAGE}`,
      `runtime \${RUNTIME_IMAGE}`,
    ]);
    expect(argDefault('BUILD_IMAGE')).toBe('node:24-bookworm-slim');
    expect(argDefault('RUNTIME_IMAGE')).toBe('gcr.io/distroless/nodejs24-debian12:nonroot');
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
    expect(pkg.engines.node).toMatch(/^>=24 <25$/);
  });

  it('runtime stage: user 65532, node dist/main.js run, no shell commands, no HEALTHCHECK', () => {
    expect(all(runtime, 'USER').map((i) => i.args)).toEqual(['65532:65532']);
    expect(JSON.parse(all(runtime, 'ENTRYPOINT')[0]!.args)).toEqual(['/nodejs/bin/node', 'dist/main.js']);
    expect(JSON.parse(all(runtime, 'CMD')[0]!.args)).toEqual(['run']);
    expect(all(runtime, 'RUN')).toEqual([]);
    expect(stages.flatMap((s) => all(s, 'HEALTHCHECK'))).toEqual([]);
    // USER comes after the last COPY and before the entry point.
    const order = runtime.instructions.map((i) => i.keyword);
    expect(order.lastIndexOf('COPY')).toBeLessThan(order.indexOf('USER'));
  });

  it('runtime stage copies only prod node_modules, dist, package.json and crds', () => {
    expect(all(runtime, 'COPY').map((i) => i.args)).toEqual([
      '--from=deps /app/node_modules ./node_modules',
      '--from=build /src/dist ./dist',
      'package.json ./',
      'crds ./crds',
    ]);
    const deps = stages.find((s) => s.name === 'deps')!;
    expect(all(deps, 'RUN').map((i) => i.args.replace(/^--mount=\S+\s+/, ''))).toEqual([
      'npm ci --omit=dev --ignore-scripts',
    ]);
    // scripts/stage-runtime.sh installs the same way, so its test speaks for this stage.
    expect(readFileSync(join(ROOT, 'scripts/stage-runtime.sh'), 'utf8')).toContain(
      'npm ci --omit=dev --ignore-scripts',
    );
    const build = stages.find((s) => s.name === 'build')!;
    expect(all(build, 'RUN').map((i) => i.args.replace(/^--mount=\S+\s+/, ''))).toEqual(['npm ci', 'npm run build']);
  });

  it('carries the OCI image labels', () => {
    const labels = all(runtime, 'LABEL')
      .map((i) => i.args)
      .join(' ');
    for (const key of ['title', 'description', 'version', 'revision', 'created', 'source', 'licenses']) {
      expect(labels).toContain(`org.opencontainers.image.${key}=`);
    }
    expect(labels).toContain('org.opencontainers.image.licenses="Apache-2.0"');
  });

  it('.dockerignore admits exactly what the stages copy from the context', () => {
    const lines = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    expect(lines[0]).toBe('*');
    const admitted = lines.filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/$/, ''));
    const copied = stages
      .flatMap((s) => all(s, 'COPY'))
      .filter((i) => !i.args.startsWith('--from'))
      .flatMap((i) => i.args.split(/\s+/).slice(0, -1))
      .map((p) => p.replace(/^\.\//, '').replace(/\/$/, ''));
    expect([...new Set(copied)].sort()).toEqual(admitted.sort());
  });

  it('passes dockerfile-utils lint when that linter is installed', () => {
    const bin = join(ROOT, 'node_modules/.bin/dockerfile-utils');
    if (!existsSync(bin)) {
      console.log('dockerfile-utils is not installed (suggested devDependency: dockerfile-utils@0.16.3)');
      return;
    }
    const r = spawnSync(bin, ['lint', join(ROOT, 'Dockerfile')], { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});

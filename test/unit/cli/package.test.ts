// What `npm pack` ships (package.json `files`): the compiled CLI that both bins run, without
// sources, tests or source maps. Packed from a copy laid out as the checkout is after
// `npm run build`, so that a stale dist/ in the work tree cannot change the answer.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
let dir: string;
let files: string[];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'readygate-pack-'));
  execFileSync(join(ROOT, 'node_modules/.bin/tsc'), ['-p', join(ROOT, 'tsconfig.json'), '--outDir', join(dir, 'dist')]);
  for (const f of ['package.json', 'README.md']) copyFileSync(join(ROOT, f), join(dir, f));
  // What else a checkout holds: none of it belongs in the package.
  for (const d of ['src', 'test', 'scripts']) {
    mkdirSync(join(dir, d));
    writeFileSync(join(dir, d, 'x.ts'), '');
  }
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: dir, encoding: 'utf8' });
  files = (JSON.parse(out) as [{ files: { path: string }[] }])[0].files.map((f) => f.path).sort();
}, 120_000);
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('npm pack', () => {
  it('ships dist/ (JavaScript only), package.json and the README', () => {
    expect(files).toContain('dist/main.js');
    expect(files).toContain('dist/cli/completion.js');
    expect(files.filter((f) => !/^dist\/.+\.js$/.test(f))).toEqual(['README.md', 'package.json']);
  });

  it('ships the file every bin points at', () => {
    const { bin } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    expect(Object.keys(bin).sort()).toEqual(['kubectl-readygate', 'readygate']);
    for (const target of Object.values(bin)) expect(files).toContain(target);
  });
});

describe('the krew manifest', () => {
  it("is a krew Plugin named readygate whose bin is the package's, with the script's placeholders", () => {
    const text = readFileSync(join(ROOT, 'plugins/krew/readygate.yaml'), 'utf8');
    const m = parse(text) as {
      apiVersion: string;
      kind: string;
      metadata: { name: string };
      spec: { version: string; platforms: { uri: string; sha256: string; bin: string; files: object[] }[] };
    };
    expect(m).toMatchObject({
      apiVersion: 'krew.googlecontainertools.github.com/v1alpha2',
      kind: 'Plugin',
      metadata: { name: 'readygate' },
      spec: { version: '@VERSION@' },
    });
    expect(m.spec.platforms).toHaveLength(1);
    expect(m.spec.platforms[0]).toMatchObject({ uri: '@URI@', sha256: '@SHA256@', bin: 'dist/main.js' });
    // scripts/package-cli.sh fills in exactly these.
    expect(readFileSync(join(ROOT, 'scripts/package-cli.sh'), 'utf8')).toContain(
      'sed -e "s|@VERSION@|$version|" -e "s|@URI@|$uri|" -e "s|@SHA256@|$sha|"',
    );
    expect(files).toContain(m.spec.platforms[0]?.bin);
  });
});

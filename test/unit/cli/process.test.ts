// The command line as a user runs it, `node src/main.ts <args>`, for the commands that need no
// cluster: what it prints, its exit codes, and which modules it loads to do so.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asProgram, programName, RELEASE_HELP } from '../../../src/cli/help.ts';
import { HELP, VERSION_HELP } from '../../../src/cli/main.ts';
import { RUN_HELP } from '../../../src/cli/options.ts';
import { unsupportedNode } from '../../../src/node-version.ts';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };

// Records every module the process resolves (module.registerHooks runs in the process itself).
const RECORDER = `import { writeFileSync } from 'node:fs';
import { registerHooks } from 'node:module';
const urls = [];
registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); urls.push(r.url); return r; } });
process.on('exit', () => writeFileSync(process.env.READYGATE_TEST_LOADED, urls.join('\\n')));
`;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'readygate-cli-'));
  writeFileSync(join(dir, 'recorder.mjs'), RECORDER);
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function cli(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): { code: number | null; stdout: string; stderr: string; loaded: string[] } {
  const out = join(dir, 'loaded.txt');
  rmSync(out, { force: true });
  const r = spawnSync(
    process.execPath,
    ['--import', pathToFileURL(join(dir, 'recorder.mjs')).href, join(ROOT, 'src/main.ts'), ...args],
    { encoding: 'utf8', timeout: 60_000, env: { ...env, READYGATE_TEST_LOADED: out } },
  );
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, loaded: readFileSync(out, 'utf8').split('\n') };
}

describe('readygate version', () => {
  const text = `readygate ${version} (node ${process.versions.node})\n`;

  it('prints the version as text; -v and --version are the same command', () => {
    for (const command of ['version', '-v', '--version']) {
      const r = cli([command]);
      expect(r, command).toMatchObject({ code: 0, stdout: text, stderr: '' });
    }
  });

  it('prints JSON with --output json or -o json', () => {
    for (const args of [
      ['version', '--output', 'json'],
      ['version', '-o', 'json'],
      ['-v', '-o', 'json'],
      ['--version', '--output=json'],
    ]) {
      const r = cli(args);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stderr).toBe('');
      expect(JSON.parse(r.stdout)).toEqual({ version, node: process.versions.node });
    }
    expect(cli(['version', '--output', 'text']).stdout).toBe(text);
  });

  it.each([
    [['version', '--output', 'yaml'], 'readygate version: --output must be text or json\n'],
    [['-v', '--frobnicate'], "readygate -v: Unknown option '--frobnicate'"],
    [['version', 'now'], "readygate version: Unexpected argument 'now'"],
  ])('refuses %j with exit code 2 and the reason', (args, words) => {
    const r = cli(args);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(words);
  });

  it('has its own --help', () => {
    expect(cli(['version', '--help'])).toMatchObject({ code: 0, stdout: VERSION_HELP });
  });
});

describe('usage', () => {
  it('--help and help print the usage with exit code 0; no command prints it with exit code 2', () => {
    expect(cli(['--help'])).toMatchObject({ code: 0, stdout: HELP, stderr: '' });
    expect(cli(['help'])).toMatchObject({ code: 0, stdout: HELP });
    expect(cli([])).toMatchObject({ code: 2, stdout: HELP });
    expect(cli(['run', '--help'])).toMatchObject({ code: 0, stdout: RUN_HELP });
  });

  it('an unknown command or flag gets exit code 2 and the usage on stderr', () => {
    for (const command of ['frobnicate', '-x', '--verbose']) {
      const r = cli([command]);
      expect(r.code, command).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(`readygate: unknown command ${JSON.stringify(command)}\n\n${HELP}`);
    }
  });

  it('a bad flag of run is refused before anything starts', () => {
    const r = cli(['run', '--frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("readygate run: Unknown option '--frobnicate'");
  });

  it('release has its own --help, and refuses a bad flag before reaching a cluster', () => {
    expect(cli(['release', '--help'])).toMatchObject({ code: 0, stdout: RELEASE_HELP });
    const r = cli(['release', '-n', 'Not_A_Namespace']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('readygate release: --namespace must be a namespace name, got "Not_A_Namespace"');
  });
});

describe('without a cluster', () => {
  // No $KUBECONFIG, an empty home, not in a pod: nothing says where a cluster is.
  const nowhere = () => {
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: join(dir, 'empty-home') };
    delete env.KUBECONFIG;
    delete env.KUBERNETES_SERVICE_HOST;
    return env;
  };

  it('explain, release and run say there is no kubeconfig, with exit code 3, instead of trying localhost:8080', () => {
    for (const args of [['explain', 'pod/web-1'], ['release', '--dry-run'], ['run']]) {
      const r = cli(args, nowhere());
      expect(r.code, args[0]).toBe(3);
      expect(r.stderr, args[0]).toBe('error: no kubeconfig found: set KUBECONFIG or pass --kubeconfig\n');
    }
  });

  it('a kubeconfig that cannot be read is named', () => {
    const r = cli(['explain', 'pod/web-1', '--kubeconfig', join(dir, 'missing.yaml')], nowhere());
    expect(r.code).toBe(3);
    expect(r.stderr).toBe(
      `error: cannot read kubeconfig: ENOENT: no such file or directory, open '${join(dir, 'missing.yaml')}'\n`,
    );
  });

  it('an API server nobody listens on is "connection refused", as kubectl says it', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    await new Promise((resolve) => server.close(resolve));
    const path = join(dir, 'refused.kubeconfig');
    writeFileSync(
      path,
      `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:${port}", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`,
    );
    const line = `Unable to connect to the server: dial tcp 127.0.0.1:${port}: connect: connection refused\n`;
    for (const args of [['explain', 'pod/web-1'], ['release']]) {
      const r = cli([...args, '--kubeconfig', path], nowhere());
      expect(r, args[0]).toMatchObject({ code: 3, stderr: line });
    }
  });
});

describe('as a kubectl plugin', () => {
  it('is named kubectl readygate when started as kubectl-readygate, from any path', () => {
    expect(programName('/home/u/.krew/bin/kubectl-readygate')).toBe('kubectl readygate');
    expect(programName('C:\\npm\\kubectl-readygate.cmd')).toBe('kubectl readygate');
    expect(programName('/usr/local/bin/readygate')).toBe('readygate');
    expect(programName('/app/dist/main.js')).toBe('readygate');
    expect(programName(undefined)).toBe('readygate');
  });

  it('rewrites the commands of a help text, and only those', () => {
    expect(asProgram(HELP, 'readygate')).toBe(HELP);
    const help = asProgram(HELP, 'kubectl readygate');
    expect(help.startsWith('Usage: kubectl readygate <command> [flags]\n')).toBe(true);
    expect(help).toContain('(see: kubectl readygate run --help)');
    expect(asProgram(RELEASE_HELP, 'kubectl readygate')).toContain(
      'Readygate gates are those under --allowed-condition-prefixes (default\nreadygate.dev/, as `kubectl readygate run`)',
    );
  });

  it('kubectl-readygate found on PATH prints its help as kubectl readygate', () => {
    // The shape npm and krew install: a symlink of that name to an executable entry point.
    const bin = join(dir, 'plugin-bin');
    mkdirSync(bin, { recursive: true });
    const entry = join(dir, 'entry.mjs');
    writeFileSync(
      entry,
      `#!/usr/bin/env node\nawait import(${JSON.stringify(pathToFileURL(join(ROOT, 'src/main.ts')).href)});\n`,
    );
    chmodSync(entry, 0o755);
    rmSync(join(bin, 'kubectl-readygate'), { force: true });
    symlinkSync(entry, join(bin, 'kubectl-readygate'));
    const path = [bin, dirname(process.execPath), process.env.PATH].join(delimiter);
    const r = spawnSync('kubectl-readygate', ['--help'], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, PATH: path },
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(asProgram(HELP, 'kubectl readygate'));
    const explain = spawnSync('kubectl-readygate', ['explain', '--help'], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, PATH: path },
    });
    expect(explain.stdout.startsWith('Usage: kubectl readygate explain pod/NAME')).toBe(true);
    const usage = spawnSync('kubectl-readygate', ['explain'], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, PATH: path },
    });
    expect(usage.status).toBe(2);
    expect(usage.stderr.startsWith('kubectl readygate explain: expected one pod, as pod/NAME\n')).toBe(true);
  });
});

describe('start-up loads only what the command needs', () => {
  const heavy = (urls: string[]) =>
    urls.filter((u) => u.includes('/node_modules/') || /\/src\/(controllers|kube|probes|observability)\//.test(u));

  it('version and --help load no dependency and none of the operator', () => {
    for (const args of [
      ['version'],
      ['--help'],
      ['-v', '-o', 'json'],
      ['run', '--help'],
      ['check', '--help'],
      ['explain', '-h'],
      ['release', '--help'],
    ]) {
      const { code, loaded } = cli(args);
      expect(code, args.join(' ')).toBe(0);
      expect(loaded).toContain(pathToFileURL(join(ROOT, 'src/cli/main.ts')).href);
      expect(heavy(loaded), args.join(' ')).toEqual([]);
    }
  });

  it('check loads its modules when it runs', () => {
    const r = cli(['check']); // runs, and refuses the missing -f
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('readygate check: -f POLICY.yaml is required');
    expect(r.loaded).toContain(pathToFileURL(join(ROOT, 'src/cli/check.ts')).href);
    expect(heavy(r.loaded).length).toBeGreaterThan(0);
  });
});

describe('unsupportedNode', () => {
  it('names the version needed and the one found', () => {
    expect(unsupportedNode('v20.20.2')).toBe('readygate needs Node.js 24 or later (found v20.20.2)');
    expect(unsupportedNode('v23.11.0')).toBe('readygate needs Node.js 24 or later (found v23.11.0)');
    expect(unsupportedNode('v8.17.0')).toBe('readygate needs Node.js 24 or later (found v8.17.0)');
  });
  it('accepts 24 and later', () => {
    for (const v of ['v24.0.0', 'v24.21.0', 'v25.2.1', 'v100.0.0']) expect(unsupportedNode(v), v).toBeUndefined();
  });
  it('refuses a version it cannot read rather than guessing', () => {
    expect(unsupportedNode('nonsense')).toBe('readygate needs Node.js 24 or later (found nonsense)');
  });
});

// readygate completion: the scripts are made from the help texts, which must name exactly the
// flags the commands parse; the bash script is run by bash itself.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { commandSpecs, completionScript, flagsOf } from '../../../src/cli/completion.ts';
import { EXPLAIN_FLAGS } from '../../../src/cli/explain.ts';
import { EXPLAIN_HELP, RELEASE_HELP, VERSION_HELP } from '../../../src/cli/help.ts';
import { RUN_FLAGS, RUN_HELP } from '../../../src/cli/options.ts';
import { RELEASE_FLAGS } from '../../../src/cli/release.ts';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

/**
 * The parser's options each as the help documents it: --long, or -x when the help names only its
 * short form (kubectl's `-n NAMESPACE`); the help is always offered.
 */
const documented = (
  options: Readonly<Record<string, { readonly type: string; readonly short?: string }>>,
  flags: string[],
) =>
  [
    '--help',
    ...Object.entries(options)
      .filter(([name]) => name !== 'help')
      .map(([name, o]) => (!flags.includes(`--${name}`) && o.short ? `-${o.short}` : `--${name}`)),
  ].sort();

describe('the help texts name the flags the commands parse', () => {
  it.each([
    ['run', RUN_HELP, RUN_FLAGS],
    ['explain', EXPLAIN_HELP, EXPLAIN_FLAGS],
    ['release', RELEASE_HELP, RELEASE_FLAGS],
  ] as const)('%s', (_, help, options) => {
    // Every flag parsed is in the help, and every flag in the help is parsed.
    const flags = flagsOf(help);
    expect([...flags].sort()).toEqual(documented(options, flags));
  });

  it('reads the usage and the flag lines, not flags of other commands mentioned in the prose', () => {
    // EXPLAIN_HELP's prose names `readygate run --shard-buckets`.
    expect(EXPLAIN_HELP).toContain('--shard-buckets');
    expect(flagsOf(EXPLAIN_HELP)).not.toContain('--shard-buckets');
    expect(flagsOf(VERSION_HELP)).toEqual(['--help', '--output']);
  });

  it('lists every command of the usage, completion offering the shells', () => {
    const specs = commandSpecs();
    expect(specs.map((s) => s.name)).toEqual(['run', 'check', 'explain', 'release', 'version', 'completion']);
    expect(specs.find((s) => s.name === 'completion')?.words).toEqual(['bash', 'zsh', 'fish']);
    expect(specs.find((s) => s.name === 'check')?.flags).toEqual(
      expect.arrayContaining(['--pod', '--address', '--kubeconfig', '-f']),
    );
  });
});

function cli(args: string[]) {
  return spawnSync(process.execPath, [join(ROOT, 'src/main.ts'), ...args], { encoding: 'utf8', timeout: 60_000 });
}

/** Loads the bash script the CLI prints and asks bash what it completes `line` (ending in a word) to. */
function bashCompletes(script: string, words: string[]): string[] {
  const quoted = words.map((w) => `'${w}'`).join(' ');
  const program = `${script}
complete -p readygate
COMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}
_readygate
printf '%s\\n' "\${COMPREPLY[@]}"`;
  const r = spawnSync('bash', ['--norc', '--noprofile', '-c', program], { encoding: 'utf8', timeout: 30_000 });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const [registered = '', ...completions] = r.stdout.trim().split('\n');
  expect(registered).toBe('complete -o default -F _readygate readygate');
  return completions.filter(Boolean);
}

describe('readygate completion', () => {
  it('prints a bash script bash accepts, completing commands and their flags', () => {
    const r = cli(['completion', 'bash']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(completionScript('bash'));
    expect(spawnSync('bash', ['-n'], { input: r.stdout, encoding: 'utf8' })).toMatchObject({ status: 0, stderr: '' });
    expect(bashCompletes(r.stdout, ['readygate', 'ex'])).toEqual(['explain']);
    expect(bashCompletes(r.stdout, ['readygate', 're'])).toEqual(['release']);
    expect(bashCompletes(r.stdout, ['readygate', 'explain', '--op'])).toEqual(['--operator-namespace']);
    expect(bashCompletes(r.stdout, ['readygate', 'release', '--d'])).toEqual(['--dry-run']);
    expect(bashCompletes(r.stdout, ['readygate', 'completion', 'z'])).toEqual(['zsh']);
  });

  it('prints zsh (through bashcompinit) and fish scripts for the same commands and flags', () => {
    const zsh = cli(['completion', 'zsh']).stdout;
    expect(zsh).toContain('autoload -U +X bashcompinit && bashcompinit\n');
    expect(zsh).toContain(completionScript('bash').split('\n').slice(1).join('\n'));
    const fish = cli(['completion', 'fish']).stdout;
    expect(fish).toContain(
      "complete -c readygate -n __fish_use_subcommand -f -a explain -d 'explain why a pod is or is not Ready, gate by gate'",
    );
    expect(fish).toContain("complete -c readygate -n '__fish_seen_subcommand_from explain' -l operator-namespace\n");
    expect(fish).toContain("complete -c readygate -n '__fish_seen_subcommand_from check' -s f\n");
  });

  // .ci/run installs zsh and fish (Debian packages); a machine without them fails here, not skips.
  it('zsh and fish read their scripts without a syntax error, and fish completes a command', () => {
    const dir = mkdtempSync(join(tmpdir(), 'completion-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    for (const shell of ['zsh', 'fish']) {
      const file = join(dir, `readygate.${shell}`);
      writeFileSync(file, cli(['completion', shell]).stdout);
      const r = spawnSync(shell, ['-n', file], { encoding: 'utf8' });
      expect(r.error, `${shell} is needed for this test: apt-get install ${shell}`).toBeUndefined();
      expect(r.stderr).toBe('');
      expect(r.status, `${shell} -n`).toBe(0);
    }
    const fish = spawnSync(
      'fish',
      ['--no-config', '-c', `source ${join(dir, 'readygate.fish')}; complete -C "readygate ex"`],
      {
        encoding: 'utf8',
      },
    );
    expect(fish.stdout).toBe('explain\texplain why a pod is or is not Ready, gate by gate\n');
  });

  it('refuses another shell with exit code 2', () => {
    const r = cli(['completion', 'powershell']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^readygate completion: expected one shell: bash, zsh, fish\n/);
  });
});

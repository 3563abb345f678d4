// `readygate check` with an exec policy against a local stand-in for pods/exec: an API error is
// reported as "not run" (exit 3, the API error code), never as a failing probe.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { runCheck } from '../../../src/cli/check.ts';
import { type ExecServer, startExecServer } from '../probes/support/exec-server.ts';

describe('readygate check with an exec probe', () => {
  let dir: string | undefined;
  let server: ExecServer | undefined;
  afterEach(async () => {
    vi.restoreAllMocks();
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const check = async (rejectWith?: number): Promise<{ code: number; out: string }> => {
    server = await startExecServer(rejectWith ? { rejectWith } : {});
    dir = mkdtempSync(join(tmpdir(), 'readygate-check-'));
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [
          { name: 't', cluster: { server: `http://127.0.0.1:${server.port}`, 'insecure-skip-tls-verify': true } },
        ],
        users: [{ name: 'u', user: { token: 'token' } }],
        contexts: [{ name: 't', context: { cluster: 't', user: 'u' } }],
        'current-context': 't',
      }),
    );
    const policy = join(dir, 'policy.yaml');
    writeFileSync(
      policy,
      JSON.stringify({
        apiVersion: 'readygate.dev/v1alpha1',
        kind: 'ProbePolicy',
        metadata: { name: 'db', namespace: 'shop' },
        spec: {
          conditionType: 'readygate.dev/db',
          selector: {},
          probe: { exec: { command: ['true'], container: 'db' } },
        },
      }),
    );
    let out = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out += String(chunk);
      return true;
    });
    const code = await runCheck(['-f', policy, '--address', '127.0.0.1', '--kubeconfig', kubeconfig]);
    return { code, out };
  };

  it('a refused exec (HTTP 403) is NOT RUN with exit code 3, and no condition is computed', async () => {
    const { code, out } = await check(403);
    expect(code).toBe(3);
    expect(out).toContain('NOT RUN exec ["true"] in ');
    expect(out).toContain('not run: API server answered HTTP 403');
    expect(out).toContain('condition: unchanged (nothing observed; not counted toward failureThreshold)');
  });

  it('a run exec passes as before', async () => {
    const { code, out } = await check();
    expect(code).toBe(0);
    expect(out).toContain('PASS exec ["true"] in ');
    expect(out).toContain('condition: readygate.dev/db=True reason=ProbeSucceeded');
  });
});

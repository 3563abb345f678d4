// `readygate check` as a user runs it, `node src/main.ts check ...`, against a loopback HTTP
// server: the exit codes are the contract (0 pass, 1 probe failed, 2 invalid input, 3 cluster
// unreachable), and a bad spec is never reported as a failing probe.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(ROOT, 'src/main.ts'), ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr });
    });
  });
}

let dir: string;
let server: Server;
let port: number;
const requested: string[] = [];
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'readygate-check-'));
  server = createServer((req, res) => {
    requested.push(req.url ?? '');
    res.writeHead(req.url === '/ready' ? 200 : 503, { connection: 'close' });
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

const policy = (probe: string, name = 'web') => `apiVersion: readygate.dev/v1alpha1
kind: ProbePolicy
metadata: {name: ${name}}
spec:
  conditionType: readygate.dev/web
  selector: {matchLabels: {app: web}}
  probe:
    ${probe}
`;
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

describe('readygate check exit codes', () => {
  it('0 when the probe passes, a named port given by --port', async () => {
    const f = file('ok.yaml', policy('httpGet: {port: http, path: /ready}'));
    const r = await cli(['check', '-f', f, '--address', '127.0.0.1', '--port', `http=${port}`]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain(`PASS HTTP GET http://127.0.0.1:${port}/ready: 200`);
    expect(r.code).toBe(0);
  });

  it('1 when the probe fails; every ProbePolicy of the file is probed, other kinds skipped', async () => {
    const f = file(
      'multi.yaml',
      `${policy('httpGet: {port: http, path: /ready}')}---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\n---\n${policy('httpGet: {port: http, path: /nope}', 'web-deep')}`,
    );
    const r = await cli(['check', '-f', f, '--address', '127.0.0.1', '--port', `http=${port}`, '-o', 'json']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('document 2: skipped, not a ProbePolicy (v1 Service)');
    const out = JSON.parse(r.stdout) as { policy: string; passed: boolean }[];
    expect(out.map((p) => [p.policy, p.passed])).toEqual([
      ['web', true],
      ['web-deep', false],
    ]);
  });

  it('2, naming the field, for a spec the API server would refuse; nothing is probed', async () => {
    const f = file('bad.yaml', policy(`httpGet: {port: ${port}, path: /ready, successCode: ["200"]}`));
    const r = await cli(['check', '-f', f, '--address', '127.0.0.1']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('document 1 (web): spec.probe.httpGet.successCode: unknown field');
  });

  it('2 for a YAML syntax error, with its line and column', async () => {
    const f = file('syntax.yaml', `${policy('httpGet: {port: 80')}`);
    const r = await cli(['check', '-f', f, '--address', '127.0.0.1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^readygate check: \S+syntax\.yaml:\d+:\d+: invalid YAML: /);
    expect(r.stderr.split('\n').length).toBeLessThan(4);
  });

  it('2 for a named port --port does not give, or a malformed --port', async () => {
    const f = file('named.yaml', policy('tcpSocket: {port: db}'));
    const missing = await cli(['check', '-f', f, '--address', '127.0.0.1', '--port', 'http=80']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('the named port "db"');
    expect(missing.stderr).toContain('give --port db=NUMBER');
    const malformed = await cli(['check', '-f', f, '--address', '127.0.0.1', '--port', 'db']);
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toContain('--port: expected NAME=NUMBER');
  });

  const kubeconfig = (name: string, server: string) =>
    file(
      name,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 't', cluster: { server, 'insecure-skip-tls-verify': true } }],
        users: [{ name: 'u', user: { token: 't' } }],
        contexts: [{ name: 't', context: { cluster: 't', user: 'u', namespace: 'shop' } }],
        'current-context': 't',
      }),
    );

  it('3 when the cluster cannot be reached for --pod', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
    const unused = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const f = file('pod.yaml', policy('tcpSocket: {port: 80}'));
    const r = await cli([
      'check',
      '-f',
      f,
      '--pod',
      'web-0',
      '--kubeconfig',
      kubeconfig('kc-closed', `http://127.0.0.1:${unused}`),
    ]);
    expect(r.stderr).toContain(
      `cannot read pod shop/web-0 from http://127.0.0.1:${unused}: fetch failed (ECONNREFUSED)`,
    );
    expect(r.code).toBe(3);
  });

  it('--pod without -n reads the pod from the namespace of the kubeconfig context', async () => {
    const f = file('pod.yaml', policy('tcpSocket: {port: 80}'));
    const r = await cli([
      'check',
      '-f',
      f,
      '--pod',
      'web-0',
      '--kubeconfig',
      kubeconfig('kc', `http://127.0.0.1:${port}`),
    ]);
    expect(r.code).toBe(3); // the stand-in answers 503
    expect(requested).toContain('/api/v1/namespaces/shop/pods/web-0');
  });
});

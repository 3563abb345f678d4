// Hostile status channels: each session is probed in a child process
// (support/exec-hostile-child.ts), so an exception the prober lets escape shows as that process
// dying instead of taking the test worker down. With client-node's WebSocketHandler all four ended
// the process (SyntaxError from JSON.parse, 'Unknown stream: 9', ERR_STREAM_WRITE_AFTER_END,
// TypeError from causes.find) from inside the socket's 'message' listener.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { execUrl, MAX_STATUS_BYTES, readFrame } from '../../../src/probes/exec.ts';
import type { ProbeResult } from '../../../src/probes/types.ts';

const CHILD = fileURLToPath(new URL('./support/exec-hostile-child.ts', import.meta.url));

function probeInChild(command: string): Promise<{ code: number | null; stderr: string; result?: ProbeResult }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CHILD, command], { timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      const line = stdout.trim().split('\n').pop() ?? '';
      resolve({ code, stderr, result: line.startsWith('{') ? (JSON.parse(line) as ProbeResult) : undefined });
    });
  });
}

describe.concurrent('exec prober against hostile status channels (process survives)', () => {
  it.each<[string, Partial<ProbeResult>]>([
    [
      'bad-json',
      {
        outcome: 'unknown',
        couldNotLook: true,
        message: 'exec ["bad-json"] in shop/web-0/app: not run: unreadable exit status',
      },
    ],
    [
      'unknown-channel',
      { outcome: 'success', couldNotLook: false, message: 'exec ["unknown-channel"] in shop/web-0/app: exit code 0' },
    ],
    [
      'after-status',
      { outcome: 'success', couldNotLook: false, message: 'exec ["after-status"] in shop/web-0/app: exit code 0' },
    ],
    [
      'odd-causes',
      { outcome: 'failure', couldNotLook: false, message: 'exec ["odd-causes"] in shop/web-0/app: exit code unknown' },
    ],
  ])('%s → a result, and the process lives on', async (command, expected) => {
    const { code, stderr, result } = await probeInChild(command);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(result).toMatchObject(expected);
  });
});

describe('readFrame', () => {
  const frame = (channel: number, payload: string | Buffer) =>
    Buffer.concat([Buffer.from([channel]), Buffer.isBuffer(payload) ? payload : Buffer.from(payload)]);

  it('reads a status object from channel 3 and ignores every other channel and text messages', () => {
    expect(readFrame(frame(3, '{"status":"Success"}'), true)).toEqual({
      kind: 'status',
      status: { status: 'Success' },
    });
    for (const channel of [0, 1, 2, 4, 9, 254, 255]) expect(readFrame(frame(channel, '{'), true).kind).toBe('ignored');
    expect(readFrame(frame(3, '{"status":"Success"}'), false).kind).toBe('ignored');
    expect(readFrame(Buffer.alloc(0), true).kind).toBe('ignored');
  });

  it('a status that is not JSON, not an object, or too long is unreadable', () => {
    for (const payload of ['', '{', 'null', '5', '"Success"', '[{"status":"Success"}]', '\u0000\u00ff']) {
      expect(readFrame(frame(3, payload), true).kind).toBe('unreadable');
    }
    const long = `{"status":"Success","pad":"${'x'.repeat(MAX_STATUS_BYTES)}"}`;
    expect(readFrame(frame(3, long), true).kind).toBe('unreadable');
  });

  it('takes fragments and ArrayBuffers as ws may deliver them', () => {
    const whole = frame(3, '{"status":"Success"}');
    expect(readFrame([whole.subarray(0, 4), whole.subarray(4)], true).kind).toBe('status');
    const ab = whole.buffer.slice(whole.byteOffset, whole.byteOffset + whole.length) as ArrayBuffer;
    expect(readFrame(ab, true).kind).toBe('status');
  });
});

describe('execUrl', () => {
  const kc = (server: string) => {
    const k = new KubeConfig();
    k.loadFromOptions({
      clusters: [{ name: 'c', server }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    return k;
  };
  const req = { namespace: 'shop', pod: 'web-0', container: 'app', command: ['sh', '-c', 'a && b+c'], timeoutMs: 1 };

  it('maps https to wss and http to ws, keeps a path prefix, and asks for stdout and stderr only', () => {
    const url = new URL(execUrl(kc('https://10.0.0.1:6443/prefix/'), req));
    expect(url.protocol).toBe('wss:');
    expect(url.pathname).toBe('/prefix/api/v1/namespaces/shop/pods/web-0/exec');
    expect(url.searchParams.getAll('command')).toEqual(['sh', '-c', 'a && b+c']);
    expect(Object.fromEntries([...url.searchParams].filter(([k]) => k !== 'command'))).toEqual({
      stdout: 'true',
      stderr: 'true',
      stdin: 'false',
      tty: 'false',
      container: 'app',
    });
    expect(execUrl(kc('http://127.0.0.1:8080'), req)).toMatch(/^ws:\/\/127\.0\.0\.1:8080\/api\/v1\//);
  });
});

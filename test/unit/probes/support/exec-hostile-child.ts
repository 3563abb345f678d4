// Runs one exec probe against the fixture's hostile session `process.argv[2]` in a process of its
// own and prints the result as JSON: an exception the prober lets escape ends this process (exit
// 1 with the stack on stderr) instead of the test worker. Used by test/unit/probes/exec-hostile.test.ts.
import { KubeConfig } from '@kubernetes/client-node';
import { createExecProber } from '../../../../src/probes/exec.ts';
import { startExecServer } from './exec-server.ts';

const server = await startExecServer();
const kc = new KubeConfig();
kc.loadFromOptions({
  clusters: [{ name: 'test', server: `http://127.0.0.1:${server.port}`, skipTLSVerify: true }],
  users: [{ name: 'operator', token: 'token' }],
  contexts: [{ name: 'test', cluster: 'test', user: 'operator' }],
  currentContext: 'test',
});
const result = await createExecProber(kc).probe({
  namespace: 'shop',
  pod: 'web-0',
  container: 'app',
  command: [process.argv[2] ?? 'true'],
  timeoutMs: 2000,
});
// Frames sent after the status can only do harm until the prober's socket is gone: wait until the
// server saw every session close.
await server.idle();
await server.close();
process.stdout.write(`${JSON.stringify(result)}\n`);

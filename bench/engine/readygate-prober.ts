// The one place where the benchmark meets readygate's probers. Everything else in bench/engine
// only sees `createProber(kind, timeoutMs)`.
import http from 'node:http';
import net from 'node:net';
import type { ProbeFn } from './loop.ts';
import type { ProbeKind } from './types.ts';

/** Which implementation `createProber` returns, for the results file. */
export const implementation = 'bench stand-in (node:net connect + resetAndDestroy; node:http, agent: false)';

const MAX_BODY = 10 * 1024;

function tcpProbe(timeoutMs: number): ProbeFn {
  return (_i, t) =>
    new Promise((resolve) => {
      const socket = net.connect({ host: t.host, port: t.port, timeout: timeoutMs });
      socket.once('connect', () => {
        socket.resetAndDestroy();
        resolve(true);
      });
      socket.once('timeout', () => {
        socket.destroy();
        resolve(false);
      });
      socket.once('error', () => resolve(false));
    });
}

function httpProbe(timeoutMs: number): ProbeFn {
  return (_i, t) =>
    new Promise((resolve) => {
      const req = http.get(
        {
          host: t.host,
          port: t.port,
          path: t.path ?? '/',
          agent: false,
          timeout: timeoutMs,
          headers: { 'user-agent': 'readygate/bench', accept: '*/*' },
        },
        (res) => {
          let read = 0;
          res.on('data', (chunk: Buffer) => {
            read += chunk.length;
            if (read >= MAX_BODY) res.destroy();
          });
          const code = res.statusCode ?? 0;
          const settle = () => resolve(code >= 200 && code < 400);
          res.once('end', settle);
          res.once('close', settle);
        },
      );
      req.once('timeout', () => req.destroy(new Error('timeout')));
      req.once('error', () => resolve(false));
    });
}

/** Returns readygate's prober for `kind`, as a function the benchmark loop can call. */
export function createProber(kind: ProbeKind, timeoutMs: number): ProbeFn {
  return kind === 'tcp' ? tcpProbe(timeoutMs) : httpProbe(timeoutMs);
}

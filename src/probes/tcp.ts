// TCP socket probe: success when a connection to podIP:port is established in time.
import { connect } from 'node:net';
import { classifyNetError, formatTimeout, joinHostPort } from './net-errors.ts';
import type { ProbeResult } from './types.ts';

export interface TcpProbeRequest {
  host: string;
  port: number;
  timeoutMs: number;
}

export interface TcpProbeDeps {
  /** Monotonic milliseconds; injected for tests. */
  now?: () => number;
}

/** Connects to host:port within timeoutMs and resolves (never rejects) with the probe result. */
export function probeTcp(req: TcpProbeRequest, deps: TcpProbeDeps = {}): Promise<ProbeResult> {
  const now = deps.now ?? performance.now.bind(performance);
  const started = now();
  const subject = `TCP connect ${joinHostPort(req.host, req.port)}`;
  return new Promise((resolve) => {
    let settled = false;
    const socket = connect({ host: req.host, port: req.port });
    const finish = (r: Omit<ProbeResult, 'durationMs'>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...r, durationMs: now() - started });
    };
    // One timer for the whole dial, like net.DialTimeout in k8s.io/kubernetes pkg/probe/tcp.
    const timer = setTimeout(() => {
      socket.destroy();
      // The handshake never completed: we cannot tell a dead pod from a broken path, so the
      // failsafe must see it.
      finish({
        outcome: 'timeout',
        couldNotLook: true,
        message: `${subject}: timeout after ${formatTimeout(req.timeoutMs)}`,
      });
    }, req.timeoutMs);
    socket.once('connect', () => {
      // RST instead of FIN: no TIME_WAIT on our side after thousands of probes, the same
      // reason the kubelet sets SO_LINGER on its probe sockets (pkg/probe/tcp).
      socket.resetAndDestroy();
      finish({ outcome: 'success', couldNotLook: false, message: `${subject}: connected` });
    });
    socket.on('error', (err) => {
      socket.destroy();
      const c = classifyNetError(err);
      finish({ outcome: 'failure', couldNotLook: c.couldNotLook, message: `${subject}: ${c.text}` });
    });
  });
}

// gRPC probe: grpc.health.v1.Health/Check over plaintext, as kubelet gRPC probes (pkg/probe/grpc).

import { AsyncLocalStorage } from 'node:async_hooks';
import { subscribe } from 'node:diagnostics_channel';
import { isIPv6, type Socket } from 'node:net';
import {
  Client,
  connectivityState,
  credentials,
  status as grpcStatus,
  Metadata,
  type ServiceError,
} from '@grpc/grpc-js';
import { VERSION } from '../version.ts';
import { decodeHealthCheckResponse, encodeHealthCheckRequest, servingStatusName } from './health-proto.ts';
import { type ClassifiedError, classifyErrorCode, formatTimeout, joinHostPort } from './net-errors.ts';
import type { ProbeResult } from './types.ts';

const CHECK_METHOD = '/grpc.health.v1.Health/Check';
const SERVING = 1;

const CHANNEL_OPTIONS = {
  'grpc.primary_user_agent': `readygate/${VERSION}`,
  'grpc.enable_channelz': 0,
  'grpc.enable_retries': 0,
  'grpc.service_config_disable_resolution': 1,
  'grpc.max_receive_message_length': 64 * 1024,
  // Each probe's channel gets a connection of its own, never one another probe is using: the
  // probe destroys its sockets when it ends.
  'grpc.use_local_subchannel_pool': 1,
  // grpc-js would otherwise send probes through a proxy named by grpc_proxy, https_proxy or
  // http_proxy; the kubelet dials the pod itself.
  'grpc.enable_http_proxy': 0,
};

/** The sockets grpc-js opens for a probe, known by the async context they are opened in. */
interface ProbeSockets {
  sockets: Set<Socket>;
  /** A TCP connection was made: from then on a timeout is the pod's, as for HTTP probes. */
  tcpConnected: boolean;
}
const probeSockets = new AsyncLocalStorage<ProbeSockets>();
subscribe('net.client.socket', (message) => {
  const probe = probeSockets.getStore();
  if (!probe) return;
  const { socket } = message as { socket: Socket };
  probe.sockets.add(socket);
  socket.once('connect', () => {
    probe.tcpConnected = true;
  });
});

export interface GrpcProbeRequest {
  host: string;
  port: number;
  /** Service name for the health check; "" or unset asks about the server as a whole. */
  service?: string;
  timeoutMs: number;
}

export interface GrpcProbeDeps {
  now?: () => number;
}

/** Calls Health/Check with a deadline of timeoutMs and resolves (never rejects) with the result. */
export async function probeGrpc(req: GrpcProbeRequest, deps: GrpcProbeDeps = {}): Promise<ProbeResult> {
  const now = deps.now ?? performance.now.bind(performance);
  const started = now();
  const address = joinHostPort(req.host, req.port);
  const subject = `gRPC health check ${address}${req.service ? ` (service ${JSON.stringify(req.service)})` : ''}`;
  // ipv4:/ipv6: targets skip the DNS resolver; a fresh channel per probe, as the kubelet dials
  // per probe, so a wedged connection never outlives one check.
  const target = `${isIPv6(req.host) ? 'ipv6' : 'ipv4'}:${address}`;
  const call = await callCheck(target, req.service ?? '', Date.now() + req.timeoutMs);
  return { ...judge(call, subject, req.timeoutMs), durationMs: now() - started };
}

/** How a Health/Check call ended, and how far its connection got. */
interface CheckCall {
  err: ServiceError | null;
  status: number;
  /** A TCP connection was made; HTTP/2 was up (the channel was READY) at some point. */
  connected: { tcp: boolean; http2: boolean };
}

/** One Health/Check on a channel of its own, closed with all its sockets before this resolves. */
function callCheck(target: string, service: string, deadline: number): Promise<CheckCall> {
  const probe: ProbeSockets = { sockets: new Set(), tcpConnected: false };
  return probeSockets.run(probe, () => {
    const client = new Client(target, credentials.createInsecure(), CHANNEL_OPTIONS);
    const wasReady = watchReady(client.getChannel(), deadline);
    return new Promise((resolve) => {
      client.makeUnaryRequest(
        CHECK_METHOD,
        encodeHealthCheckRequest,
        decodeHealthCheckResponse,
        { service },
        new Metadata(),
        { deadline },
        (err, res) => {
          client.close();
          // close() ends the connection gracefully: it half-closes the socket and waits for the
          // server to close its side, and a server that never does kept one socket per probe.
          // The kubelet's probe closes its connection outright; so do we.
          for (const socket of probe.sockets) socket.destroy();
          probe.sockets.clear();
          const connected = { tcp: probe.tcpConnected, http2: wasReady() };
          resolve({ err, status: res?.status ?? 0, connected });
        },
      );
    });
  });
}

/**
 * The probe's verdict. Messages follow pkg/probe/grpc: unimplemented → "does not implement the
 * health protocol", deadline → timeout, anything else → the RPC error.
 */
function judge(
  { err, status, connected }: CheckCall,
  subject: string,
  timeoutMs: number,
): Omit<ProbeResult, 'durationMs'> {
  if (!err) {
    const outcome = status === SERVING ? 'success' : 'failure';
    return { outcome, couldNotLook: false, message: `${subject}: ${servingStatusName(status)}` };
  }
  switch (err.code) {
    case grpcStatus.DEADLINE_EXCEEDED:
      return {
        outcome: 'timeout',
        couldNotLook: !connected.tcp,
        message: `${subject}: timeout after ${formatTimeout(timeoutMs)}${connected.tcp ? '' : ' (connect)'}`,
      };
    case grpcStatus.UNIMPLEMENTED:
      return {
        outcome: 'failure',
        couldNotLook: false,
        message: `${subject}: server does not implement grpc.health.v1.Health`,
      };
    case grpcStatus.NOT_FOUND:
      // grpc-go/grpc-java health servers answer an unknown service with NOT_FOUND.
      return { outcome: 'failure', couldNotLook: false, message: `${subject}: SERVICE_UNKNOWN (NOT_FOUND)` };
    default: {
      const name = grpcStatus[err.code] ?? `code ${Number(err.code)}`;
      // Once HTTP/2 is up, details are the server's own text: never shown, never trusted to say
      // "could not look". Before that they are grpc-js's account of the dial, with an errno.
      const dial = connected.http2 ? undefined : dialError(err.details);
      return {
        outcome: 'failure',
        couldNotLook: dial?.couldNotLook ?? false,
        message: `${subject}: ${name}${dial ? `: ${dial.text}` : ''}`,
      };
    }
  }
}

/**
 * Whether the channel was READY (an HTTP/2 connection up) at any time before the deadline or
 * close(). Its state when the call ends says less: a server can send GOAWAY and then its answer,
 * and the channel is IDLE again by the time the answer arrives. The watch ends at READY, at the
 * deadline (its timer) or at close(), which calls the watcher with SHUTDOWN and clears the timer.
 */
function watchReady(channel: ReturnType<Client['getChannel']>, deadline: number): () => boolean {
  let ready = false;
  const watch = (state: connectivityState): void => {
    if (state === connectivityState.READY) ready = true;
    if (ready || state === connectivityState.SHUTDOWN) return;
    channel.watchConnectivityState(state, deadline, (err) => {
      if (!err) watch(channel.getConnectivityState(false));
    });
  };
  watch(channel.getConnectivityState(false));
  return () => ready;
}

/** The errno code in grpc-js's description of a failed dial (e.g. "connect ECONNREFUSED …"). */
function dialError(details: string | undefined): ClassifiedError | undefined {
  const code = /\b(E[A-Z]{2,15})\b/.exec(details ?? '')?.[1];
  return code ? classifyErrorCode(code) : undefined;
}

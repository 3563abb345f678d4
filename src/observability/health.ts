import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Logger, pino } from 'pino';
import type { Registry } from 'prom-client';
import { type Clock, realClock } from '../runtime/clock.ts';
import type { AuthDecision } from './metrics-auth.ts';

// The kubelet's liveness and readiness probes and Prometheus scrape this server. node:http is
// enough for three GET routes; a framework would add dependencies and nothing we use.

export interface HealthServerOptions {
  /** Address to bind; default 0.0.0.0 (the kubelet probes the pod IP). */
  host?: string;
  /** Port to bind; 0 picks a free one (tests). */
  port: number;
  /** /readyz answers 200 only while this returns true (e.g. Manager.ready). */
  ready: () => boolean;
  /** /healthz answers 200 while this returns true; default always (answering proves the event loop runs). */
  healthy?: () => boolean;
  /** Served on /metrics; omitted means /metrics is 404. */
  registry?: Registry;
  /**
   * Decides who may read /metrics from the request's Authorization header (src/observability/metrics-auth.ts);
   * omitted: anyone. /healthz and /readyz stay open either way: the kubelet probes them without a token.
   */
  authorizeMetrics?: (authorization: string | undefined, path: string) => Promise<AuthDecision>;
  logger?: Logger;
  clock?: Clock;
  /** close() waits this long for in-flight requests before cutting connections. Default 5 s. */
  closeGraceMs?: number;
}

/** A running health server. */
export interface HealthServer {
  readonly host: string;
  readonly port: number;
  /** Base URL, e.g. http://127.0.0.1:8081. */
  readonly url: string;
  /** Stops accepting, lets in-flight requests finish within the grace period, then resolves. */
  close(): Promise<void>;
}

/** Starts serving /healthz, /readyz and /metrics; resolves once listening. */
export async function startHealthServer(opts: HealthServerOptions): Promise<HealthServer> {
  const log = (opts.logger ?? pino({ level: 'silent' })).child({ component: 'health' });
  const clock = opts.clock ?? realClock;
  const healthy = opts.healthy ?? (() => true);
  const graceMs = opts.closeGraceMs ?? 5_000;

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log.error({ err, url: req.url }, 'health request failed');
      if (!res.headersSent) send(res, 500, 'internal error\n');
      else res.destroy();
    });
  });
  // Bound every phase of a request: these endpoints answer in milliseconds.
  server.headersTimeout = 5_000;
  server.requestTimeout = 10_000;
  server.keepAliveTimeout = 5_000;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      send(res, 405, 'method not allowed\n');
      return;
    }
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    switch (path) {
      case '/healthz':
      case '/livez':
        if (healthy()) send(res, 200, 'ok\n');
        else send(res, 503, 'unhealthy\n');
        return;
      case '/readyz':
        if (opts.ready()) send(res, 200, 'ok\n');
        else send(res, 503, 'not ready\n');
        return;
      case '/metrics':
        if (opts.registry) {
          await serveMetrics(req, res, opts.registry, opts.authorizeMetrics);
          return;
        }
        break;
    }
    send(res, 404, 'not found\n');
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '0.0.0.0', () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => log.error({ err }, 'health server error'));
  const address = server.address() as AddressInfo;
  const host = address.address;
  log.info({ host, port: address.port }, 'health server listening');

  let closing: Promise<void> | undefined;
  return {
    host,
    port: address.port,
    url: `http://${address.family === 'IPv6' ? `[${host}]` : host}:${address.port}`,
    close() {
      closing ??= new Promise<void>((resolve) => {
        const timer = clock.setTimeout(() => server.closeAllConnections(), graceMs);
        server.close(() => {
          clock.clearTimeout(timer);
          resolve();
        });
        // Idle keep-alive sockets would otherwise hold close() open until they time out.
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}

/** /metrics: the registry's text, behind the optional authentication and authorization. */
async function serveMetrics(
  req: IncomingMessage,
  res: ServerResponse,
  registry: NonNullable<HealthServerOptions['registry']>,
  authorize: HealthServerOptions['authorizeMetrics'],
): Promise<void> {
  const decision = await authorize?.(req.headers.authorization, '/metrics');
  if (decision && decision.status !== 200) {
    if (decision.status === 401) res.setHeader('WWW-Authenticate', 'Bearer');
    send(res, decision.status, `${decision.message}\n`);
    return;
  }
  send(res, 200, await registry.metrics(), registry.contentType);
}

function send(res: ServerResponse, status: number, body: string, contentType = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, {
    'Content-Type': contentType,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

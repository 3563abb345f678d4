// The same HTTP exchange on undici, kept as the benchmark's comparison point (bench/probes.ts)
// and as a fallback transport. Not the default: it costs 3.2x the CPU per probe (bench/probes/RESULTS.md).
import { isIP } from 'node:net';
import { Client } from 'undici';
import { ExchangeError, type ExchangeRequest, type ExchangeResponse } from './http-exchange.ts';
import { classifyNetError, formatTimeout, joinHostPort } from './net-errors.ts';

/** Performs the exchange with a fresh undici Client (one connection, closed afterwards). */
export async function undiciExchange(req: ExchangeRequest): Promise<ExchangeResponse> {
  const tls = req.tls ?? { verify: false };
  const serverName = tls.serverName || undefined;
  const origin = `${req.https ? 'https' : 'http'}://${joinHostPort(req.host, req.port)}`;
  // A Client per exchange: TLS options differ per policy and no connection is ever reused.
  const client = new Client(origin, {
    headersTimeout: 0,
    bodyTimeout: 0,
    connectTimeout: 0,
    pipelining: 1,
    connect: req.https
      ? {
          rejectUnauthorized: tls.verify,
          ...(serverName && isIP(serverName) === 0 ? { servername: serverName } : {}),
          ...(tls.ca ? { ca: tls.ca } : {}),
        }
      : {},
  });
  let connected = false;
  client.on('connect', () => {
    connected = true;
  });
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), req.timeoutMs);
  try {
    const headers: string[] = [];
    // undici manages Connection itself; `reset: true` is its way of sending Connection: close.
    for (const [name, value] of req.headers) if (name.toLowerCase() !== 'connection') headers.push(name, value);
    const res = await client.request({ method: 'GET', path: req.path, headers, reset: true, signal: abort.signal });
    const parts: Buffer[] = [];
    let length = 0;
    let truncated = false;
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      const room = req.bodyLimit - length;
      parts.push(chunk.length <= room ? chunk : chunk.subarray(0, room));
      length += Math.min(room, chunk.length);
      if (length >= req.bodyLimit) {
        truncated = chunk.length > room;
        break;
      }
    }
    res.body.destroy();
    const location = res.headers.location;
    return {
      status: res.statusCode,
      location: Array.isArray(location) ? location[0] : location,
      body: Buffer.concat(parts, length),
      truncated,
      bytesRead: Number.NaN,
    };
  } catch (err) {
    if (abort.signal.aborted) {
      const what = connected ? '' : ' (connect)';
      throw new ExchangeError('timeout', `timeout after ${formatTimeout(req.timeoutMs)}${what}`, connected, !connected);
    }
    const cause = (err as { cause?: unknown }).cause ?? err;
    const c = classifyNetError((cause as { code?: unknown }).code ? cause : err);
    throw new ExchangeError('network', c.text, connected, c.couldNotLook);
  } finally {
    clearTimeout(timer);
    client.destroy().catch(() => {});
  }
}

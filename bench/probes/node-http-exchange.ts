// node:http with agent:false as a third HttpExchange, for the benchmark's comparison only.
import { request } from 'node:http';
import { ExchangeError, type ExchangeRequest, type ExchangeResponse } from '../../src/probes/http-exchange.ts';

/** One GET over node:http without an agent (a new connection, closed afterwards). */
export function nodeHttpExchange(req: ExchangeRequest): Promise<ExchangeResponse> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    for (const [name, value] of req.headers) headers[name] = value;
    const r = request(
      { host: req.host, port: req.port, path: req.path, headers, agent: false, timeout: req.timeoutMs },
      (res) => {
        const parts: Buffer[] = [];
        let length = 0;
        res.on('data', (chunk: Buffer) => {
          parts.push(chunk);
          length += chunk.length;
          if (length >= req.bodyLimit) res.destroy();
        });
        const done = (): void => {
          const body = Buffer.concat(parts).subarray(0, req.bodyLimit);
          resolve({
            status: res.statusCode ?? 0,
            location: res.headers.location,
            body,
            truncated: length > req.bodyLimit,
            bytesRead: Number.NaN,
          });
        };
        res.on('end', done);
        res.on('close', done);
      },
    );
    r.on('timeout', () => r.destroy(new ExchangeError('timeout', 'timeout', true, false)));
    r.on('error', (err) =>
      reject(err instanceof ExchangeError ? err : new ExchangeError('network', err.message, false, false)),
    );
    r.end();
  });
}

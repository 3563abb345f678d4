// A lean client of the test control plane's API server for the benchmark's own traffic (creating
// thousands of pods, watching their conditions): node:https with keep-alive, JSON in and out, a
// few retries on throttling. The benchmark's own cost should stay small next to the operator's.
import https from 'node:https';

export class ApiError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

export class Api {
  readonly agent: https.Agent;
  readonly #server: URL;
  readonly #token: string;

  constructor(server: string, caPem: string, token: string, maxSockets = 64) {
    this.#server = new URL(server);
    this.#token = token;
    this.agent = new https.Agent({ keepAlive: true, maxSockets, ca: caPem });
  }

  /** One request; JSON body in and out; retries 429, 5xx and resets a few times. */
  async request<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    contentType = 'application/json',
  ): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#once<T>(method, path, body, contentType);
      } catch (err) {
        const code = (err as ApiError).code;
        const retriable = code === 429 || (typeof code === 'number' && code >= 500) || code === undefined;
        if (!retriable || attempt >= 5) throw err;
        await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
      }
    }
  }

  #once<T>(method: string, path: string, body: unknown, contentType: string): Promise<T> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise<T>((resolve, reject) => {
      const req = https.request(
        {
          host: this.#server.hostname,
          port: this.#server.port,
          path,
          method,
          agent: this.agent,
          headers: {
            authorization: `Bearer ${this.#token}`,
            accept: 'application/json',
            ...(payload ? { 'content-type': contentType, 'content-length': payload.length } : {}),
          },
          timeout: 60_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const status = res.statusCode ?? 0;
            if (status >= 400) {
              let message = text;
              try {
                message = (JSON.parse(text) as { message?: string }).message ?? text;
              } catch {}
              reject(new ApiError(status, `${method} ${path}: ${status} ${message}`));
              return;
            }
            resolve((text ? JSON.parse(text) : undefined) as T);
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timeout`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** Opens a streaming GET (a watch); lines of the body go to onLine; resolves with a closer. */
  stream(path: string, onLine: (line: string) => void, onEnd: (err?: Error) => void): () => void {
    const req = https.request(
      {
        host: this.#server.hostname,
        port: this.#server.port,
        path,
        method: 'GET',
        agent: false,
        ca: (this.agent.options as { ca?: string }).ca,
        headers: { authorization: `Bearer ${this.#token}`, accept: 'application/json' },
      },
      (res) => {
        if ((res.statusCode ?? 0) >= 400) {
          res.resume();
          onEnd(new ApiError(res.statusCode ?? 0, `watch ${path}: ${res.statusCode}`));
          return;
        }
        res.setEncoding('utf8');
        let buf = '';
        res.on('data', (d: string) => {
          buf += d;
          let nl = buf.indexOf('\n');
          while (nl >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (line) onLine(line);
            nl = buf.indexOf('\n');
          }
        });
        res.on('end', () => onEnd());
        res.on('error', (e) => onEnd(e));
      },
    );
    req.on('error', (e) => onEnd(e));
    req.end();
    return () => req.destroy();
  }

  close(): void {
    this.agent.destroy();
  }
}

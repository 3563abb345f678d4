// The probe benchmark's target farm, run as a child process so its CPU is not the prober's.
// HTTP and TCP listeners spread over 127.0.0.1–127.0.0.4; prints their addresses as one JSON
// line on stdout, then serves until stdin closes.
import { createServer, type Socket } from 'node:net';

const HOSTS = ['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4'];
const PORTS_PER_HOST = 2;
const RESPONSE = Buffer.from(
  'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{"status":"ok"}',
);

interface Address {
  host: string;
  port: number;
}

// A minimal HTTP responder: the farm must stay cheap so the prober, not the farm, is measured.
// It answers once the request head is in and closes, as servers do for "Connection: close"
// (so a FIN-closing client leaves TIME_WAIT on the farm's side; an RST leaves none).
function onHttp(socket: Socket): void {
  let head = '';
  socket.on('error', () => {});
  socket.setTimeout(10_000, () => socket.destroy());
  socket.on('data', (d: Buffer) => {
    head += d.toString('latin1');
    if (head.includes('\r\n\r\n')) {
      socket.end(RESPONSE);
      head = '';
    }
  });
}

function onTcp(socket: Socket): void {
  socket.on('error', () => {});
  socket.setTimeout(10_000, () => socket.destroy());
}

async function listen(host: string, handler: (s: Socket) => void): Promise<Address> {
  const server = createServer({ noDelay: true }, handler);
  await new Promise<void>((resolve) => server.listen({ host, port: 0, backlog: 4096 }, resolve));
  return { host, port: (server.address() as { port: number }).port };
}

const http: Address[] = [];
const tcp: Address[] = [];
for (const host of HOSTS) {
  for (let i = 0; i < PORTS_PER_HOST; i++) {
    http.push(await listen(host, onHttp));
    tcp.push(await listen(host, onTcp));
  }
}
process.stdout.write(`${JSON.stringify({ http, tcp })}\n`);
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));

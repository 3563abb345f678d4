// The probe benchmark's target farm, run as a child process so its CPU is not the prober's.
// HTTP and TCP listeners spread over 127.0.0.1–127.0.0.4, and tarpits on 127.66.0.1–127.66.0.16
// (accept, read, never answer); prints their addresses as one JSON line on stdout, then serves
// until stdin closes (or 30 min at most). A line "reset-tarpit" on stdin drops every tarpit
// connection, so probes still waiting on one end at once.
import { createServer, type Socket } from 'node:net';
import { createInterface } from 'node:readline';

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

const tarpitSockets = new Set<Socket>();

// Accepts and never answers: an HTTP probe waits for its whole timeout. Dropped after 120 s
// (longer than any probe timeout the CRD allows) so nothing lingers.
function onTarpit(socket: Socket): void {
  tarpitSockets.add(socket);
  socket.on('error', () => {});
  socket.on('close', () => tarpitSockets.delete(socket));
  socket.setTimeout(120_000, () => socket.destroy());
  socket.resume();
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
const tarpit: Address[] = [];
for (let i = 1; i <= 16; i++) tarpit.push(await listen(`127.66.0.${i}`, onTarpit));
process.stdout.write(`${JSON.stringify({ http, tcp, tarpit })}\n`);
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() === 'reset-tarpit') for (const socket of tarpitSockets) socket.destroy();
});
process.stdin.on('end', () => process.exit(0));
setTimeout(() => process.exit(0), 30 * 60_000).unref();

// Helpers of the real-node tests (test/node/): the test app's pod, and waiting on its status.
import { connect } from 'node:net';
import type { CoreV1Api, V1Pod } from '@kubernetes/client-node';
import { eventually } from './wait.ts';

/** The test app's ports (test/node/images/app/main.go). */
export const APP_PORTS = { http: 8080, tcp: 8081, grpc: 8082 } as const;

/** A pod running the test app, left to kube-scheduler (no nodeName), with the readiness gates given. */
export function appPod(name: string, image: string, gates: string[] = []): V1Pod {
  return {
    metadata: { name, labels: { app: name } },
    spec: {
      terminationGracePeriodSeconds: 1,
      ...(gates.length > 0 ? { readinessGates: gates.map((conditionType) => ({ conditionType })) } : {}),
      containers: [
        {
          name: 'app',
          image,
          imagePullPolicy: 'Never',
          // The kubelet's own probe: ContainersReady only once the app listens (it opens its HTTP
          // port last), never on what the tests switch (/healthz, the TCP port, gRPC, the check).
          readinessProbe: { tcpSocket: { port: 'http' }, periodSeconds: 1 },
          ports: [
            { name: 'http', containerPort: APP_PORTS.http },
            { name: 'tcp', containerPort: APP_PORTS.tcp },
            { name: 'grpc', containerPort: APP_PORTS.grpc },
          ],
        },
      ],
    },
  };
}

export function condition(pod: V1Pod, type: string): string | undefined {
  return pod.status?.conditions?.find((c) => c.type === type)?.status;
}

/** Waits until the pod is Running with a pod IP and its containers ready; returns it. */
export async function runningPod(core: CoreV1Api, namespace: string, name: string): Promise<V1Pod> {
  return eventually(async () => {
    const pod = await core.readNamespacedPod({ namespace, name });
    if (pod.status?.phase !== 'Running' || !pod.status.podIP || condition(pod, 'ContainersReady') !== 'True') {
      throw new Error(`pod ${namespace}/${name} is ${pod.status?.phase} (ip ${pod.status?.podIP ?? 'none'})`);
    }
    return pod;
  }, 90_000);
}

/** Connects to ip:port and resolves with what the server wrote before closing. */
export function readTcp(ip: string, port: number, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    const socket = connect({ host: ip, port, timeout: timeoutMs });
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      data += d;
    });
    socket.on('end', () => resolve(data));
    socket.on('timeout', () => socket.destroy(new Error(`no answer from ${ip}:${port} within ${timeoutMs} ms`)));
    socket.on('error', reject);
  });
}

/** Switches the test app's health over its HTTP port (POST /fail?code=N or /recover); expects 200. */
export async function switchApp(ip: string, path: string): Promise<void> {
  const res = await fetch(`http://${ip}:${APP_PORTS.http}${path}`, {
    method: 'POST',
    signal: AbortSignal.timeout(5000),
  });
  // Thrown, not vitest's expect: bench/kubelet-ready.ts imports this file outside vitest.
  if (res.status !== 200) throw new Error(`POST ${path} to the app at ${ip}: expected 200, got ${res.status}`);
}

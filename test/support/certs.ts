// X.509 certificates signed by the test control plane's CA (ca.crt/ca.key in its directory), for
// the real node: the kubelet's client and serving certificates, the scheduler's client
// certificate and kube-apiserver's client certificate towards the kubelet.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface CertificateRequest {
  /** Files are written as <name>.crt and <name>.key in outDir. */
  name: string;
  commonName: string;
  /** Kubernetes groups (the certificate's O= entries). */
  organizations?: string[];
  /** serverAuth certificates need their addresses; clients get clientAuth. */
  usage: 'client' | 'server';
  ipAddresses?: string[];
  dnsNames?: string[];
}

const SUBJECT_PART = /^[A-Za-z0-9:._-]+$/;

/** Writes <name>.key and <name>.crt (valid 7 days), signed by caDir/ca.{crt,key}; returns their paths. */
export function issueCertificate(
  caDir: string,
  outDir: string,
  req: CertificateRequest,
): { cert: string; key: string } {
  for (const part of [req.commonName, ...(req.organizations ?? [])]) {
    if (!SUBJECT_PART.test(part))
      throw new Error(`certificate subject part ${JSON.stringify(part)} has unsafe characters`);
  }
  const sans = [...(req.ipAddresses ?? []).map((ip) => `IP:${ip}`), ...(req.dnsNames ?? []).map((d) => `DNS:${d}`)];
  if (req.usage === 'server' && sans.length === 0) throw new Error(`serving certificate ${req.name} needs an address`);
  const key = join(outDir, `${req.name}.key`);
  const csr = join(outDir, `${req.name}.csr`);
  const cert = join(outDir, `${req.name}.crt`);
  const ext = join(outDir, `${req.name}.ext`);
  const subject = `${(req.organizations ?? []).map((o) => `/O=${o}`).join('')}/CN=${req.commonName}`;
  const run = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  run(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
  run(['req', '-new', '-key', key, '-subj', subject, '-out', csr]);
  writeFileSync(
    ext,
    [
      `extendedKeyUsage=${req.usage === 'server' ? 'serverAuth' : 'clientAuth'}`,
      ...(sans.length > 0 ? [`subjectAltName=${sans.join(',')}`] : []),
      '',
    ].join('\n'),
  );
  run([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    join(caDir, 'ca.crt'),
    '-CAkey',
    join(caDir, 'ca.key'),
    '-CAcreateserial',
    '-days',
    '7',
    '-extfile',
    ext,
    '-out',
    cert,
  ]);
  return { cert, key };
}

/** A kubeconfig that authenticates with a client certificate (the kubelet's and the scheduler's). */
export function writeCertKubeconfig(
  path: string,
  server: string,
  caPath: string,
  user: string,
  cert: { cert: string; key: string },
): void {
  writeFileSync(
    path,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: readygate-test',
      `  cluster: {server: "${server}", certificate-authority: "${caPath}"}`,
      'users:',
      `- name: "${user}"`,
      `  user: {client-certificate: "${cert.cert}", client-key: "${cert.key}"}`,
      'contexts:',
      '- name: readygate-test',
      `  context: {cluster: readygate-test, user: "${user}"}`,
      'current-context: readygate-test',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
}

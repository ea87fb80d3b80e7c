// A CA and a server certificate for 127.0.0.1, made with the machine's openssl, and the kubeconfig that trusts them.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import YAML from 'yaml';

/** PEM material for the emulator's HTTPS listener. */
export interface ServerTls {
  caPem: string;
  certPem: string;
  keyPem: string;
}

/** Generates a throwaway CA and a server certificate (SANs 127.0.0.1, localhost) under `dir`. */
export async function makeServerTls(dir: string): Promise<ServerTls> {
  await mkdir(dir, { recursive: true });
  const f = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execa('openssl', args, { timeout: 30_000 });
  await openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=gkube-emulator-ca', '-keyout', f('ca.key'), '-out', f('ca.crt'),
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  await writeFile(f('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n');
  await openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=kube-apiserver', '-keyout', f('server.key'), '-out', f('server.csr'));
  await openssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', f('server.ext'), '-out', f('server.crt'));
  const [caPem, certPem, keyPem] = await Promise.all([readFile(f('ca.crt'), 'utf8'), readFile(f('server.crt'), 'utf8'), readFile(f('server.key'), 'utf8')]);
  return { caPem, certPem, keyPem };
}

/** A kubeconfig for the emulator: one cluster, one bearer-token user, one context named `emulator`. */
export function kubeconfigYaml(server: string, token: string, caPem?: string): string {
  const cluster: Record<string, unknown> = { server };
  if (caPem) cluster['certificate-authority-data'] = Buffer.from(caPem).toString('base64');
  else cluster['insecure-skip-tls-verify'] = true;
  return YAML.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'emulator', cluster }],
    users: [{ name: 'emulator-admin', user: { token } }],
    contexts: [{ name: 'emulator', context: { cluster: 'emulator', user: 'emulator-admin', namespace: 'default' } }],
    'current-context': 'emulator',
    preferences: {},
  });
}

// Certificates for the loopback API server and for test webhooks: a throwaway CA and a leaf for
// 127.0.0.1/localhost signed by it, made with the openssl CLI (@peculiar/x509 needs a reflect polyfill
// that is not installed) in a temporary folder that is removed right after.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface ServingCertificate {
  /** PEM of the CA that signed `certPem`; clients trust this. */
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
}

export interface ServingCertificateOptions {
  /** DNS names besides localhost, e.g. a webhook service's `name.namespace.svc`. */
  readonly dnsNames?: readonly string[];
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A fresh CA and a leaf certificate for 127.0.0.1, ::1 and localhost (plus `dnsNames`), valid two days. */
export async function createServingCertificate(options: ServingCertificateOptions = {}): Promise<ServingCertificate> {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-apiserver-tls-'));
  const file = (name: string): string => join(dir, name);
  try {
    await run('openssl', ['req', '-x509', ...EC_KEY, '-days', '2', '-subj', '/CN=gatehouse-loopback-ca',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
      '-keyout', file('ca.key'), '-out', file('ca.pem')]);
    await run('openssl', ['req', '-new', ...EC_KEY, '-subj', '/CN=localhost', '-keyout', file('leaf.key'), '-out', file('leaf.csr')]);
    const sans = ['DNS:localhost', 'IP:127.0.0.1', 'IP:::1', ...(options.dnsNames ?? []).map((name) => `DNS:${name}`)];
    await writeFile(file('leaf.ext'), `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=${sans.join(',')}\n`);
    await run('openssl', ['x509', '-req', '-in', file('leaf.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'),
      '-CAcreateserial', '-days', '2', '-extfile', file('leaf.ext'), '-out', file('leaf.pem')]);
    const [caPem, certPem, keyPem] = await Promise.all(['ca.pem', 'leaf.pem', 'leaf.key'].map((name) => readFile(file(name), 'utf8')));
    return { caPem, certPem, keyPem };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

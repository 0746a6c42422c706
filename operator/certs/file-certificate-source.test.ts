import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../api/logging/logger.js';
import { issueCa, issueServingCertificate, type KeyedCertificate } from './certificate-authority.js';
import type { ServingCertificate } from './certificate-source.js';
import { FileCertificateSource } from './file-certificate-source.js';

const DAY = 86_400_000;

describe('FileCertificateSource', () => {
  let dir: string;
  let first: KeyedCertificate;
  let second: KeyedCertificate;
  let source: FileCertificateSource | undefined;

  beforeAll(async () => {
    const now = new Date();
    const ca = await issueCa({ commonName: 'files', now, validityMs: DAY });
    const issue = () => issueServingCertificate({ ca, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], now, validityMs: DAY });
    [first, second] = [await issue(), await issue()];
  });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gatehouse-certfiles-'));
  });

  afterEach(async () => {
    source?.close();
    source = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  async function write(pair: Partial<KeyedCertificate>): Promise<void> {
    if (pair.certPem) await writeFile(join(dir, 'tls.crt'), pair.certPem);
    if (pair.keyPem) await writeFile(join(dir, 'tls.key'), pair.keyPem);
  }

  function open(): Promise<FileCertificateSource> {
    return FileCertificateSource.open({ certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), logger: silentLogger(), intervalMs: 60_000 });
  }

  it('serves the pair on disk and signals a replaced pair only once both halves match', async () => {
    await write(first);
    source = await open();
    expect(source.current().cert).toBe(first.certPem);
    const changes: ServingCertificate[] = [];
    source.onChange((pair) => changes.push(pair));
    expect(await source.refresh()).toBe(false);
    await write({ certPem: second.certPem }); // the key is not written yet
    expect(await source.refresh()).toBe(false);
    expect(source.current().cert).toBe(first.certPem);
    await write({ keyPem: second.keyPem });
    expect(await source.refresh()).toBe(true);
    expect(changes).toEqual([{ cert: second.certPem, key: second.keyPem }]);
  });

  it('keeps the current pair when the files disappear', async () => {
    await write(first);
    source = await open();
    await rm(join(dir, 'tls.key'));
    expect(await source.refresh()).toBe(false);
    expect(source.current().key).toBe(first.keyPem);
  });

  it('refuses to open a mismatched pair', async () => {
    await write({ certPem: first.certPem, keyPem: second.keyPem });
    await expect(open()).rejects.toThrow(/the key does not match the certificate/);
  });
});

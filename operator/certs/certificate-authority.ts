// The webhook's own small PKI: a self-signed CA and serving certificates it signs (ECDSA P-256,
// issued with @peculiar/x509 over WebCrypto), and the checks that decide whether stored material
// can be reused. Checks use node:crypto's X509Certificate, a second implementation, so a
// certificate is judged by something other than what made it.
import { createPrivateKey, createPublicKey, webcrypto, X509Certificate as NodeCertificate } from 'node:crypto';
import type * as X509 from '@peculiar/x509';

const crypto = webcrypto as unknown as Crypto;

let x509Module: Promise<typeof X509> | undefined;

/**
 * @peculiar/x509 is loaded on first use, after the reflect-metadata polyfill its tsyringe dependency
 * needs: a static import could be evaluated before the polyfill (CommonJS dependencies are, under
 * some loaders) and fail to load. Loading it lazily also keeps it out of processes that never sign.
 */
function loadX509(): Promise<typeof X509> {
  x509Module ??= import('reflect-metadata').then(() => import('@peculiar/x509'));
  return x509Module;
}
const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;
/** Certificates start a little in the past so a peer whose clock lags still accepts them. */
const BACKDATE_MS = 5 * 60_000;

export interface KeyedCertificate {
  readonly certPem: string;
  readonly keyPem: string;
}

function pemOfKey(der: ArrayBuffer): string {
  const base64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN PRIVATE KEY-----\n${base64}\n-----END PRIVATE KEY-----\n`;
}

async function newKeys(): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']) as Promise<CryptoKeyPair>;
}

async function importSigningKey(keyPem: string): Promise<CryptoKey> {
  const der = createPrivateKey(keyPem).export({ format: 'der', type: 'pkcs8' });
  return crypto.subtle.importKey('pkcs8', der, ALGORITHM, false, ['sign']);
}

export interface CaOptions {
  readonly commonName: string;
  readonly now: Date;
  readonly validityMs: number;
}

export async function issueCa(options: CaOptions): Promise<KeyedCertificate> {
  const x509 = await loadX509();
  const keys = await newKeys();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: randomSerial(),
      name: `CN=${options.commonName}`,
      notBefore: new Date(options.now.getTime() - BACKDATE_MS),
      notAfter: new Date(options.now.getTime() + options.validityMs),
      keys,
      signingAlgorithm: SIGNING,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  const keyDer = await crypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { certPem: `${certificate.toString('pem')}\n`, keyPem: pemOfKey(keyDer) };
}

export interface ServingOptions {
  readonly ca: KeyedCertificate;
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly now: Date;
  readonly validityMs: number;
}

export async function issueServingCertificate(options: ServingOptions): Promise<KeyedCertificate> {
  const x509 = await loadX509();
  const keys = await newKeys();
  const caCertificate = new x509.X509Certificate(options.ca.certPem);
  const caKey = await importSigningKey(options.ca.keyPem);
  const names = [
    ...options.dnsNames.map((value) => ({ type: 'dns' as const, value })),
    ...options.ipAddresses.map((value) => ({ type: 'ip' as const, value })),
  ];
  const certificate = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject: `CN=${options.dnsNames[0] ?? options.ipAddresses[0] ?? 'gatehouse-webhook'}`,
      issuer: caCertificate.subject,
      notBefore: new Date(options.now.getTime() - BACKDATE_MS),
      notAfter: new Date(options.now.getTime() + options.validityMs),
      publicKey: keys.publicKey,
      signingKey: caKey,
      signingAlgorithm: SIGNING,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
        new x509.SubjectAlternativeNameExtension(names, false),
        await x509.AuthorityKeyIdentifierExtension.create(caCertificate, false, crypto),
      ],
    },
    crypto,
  );
  const keyDer = await crypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { certPem: `${certificate.toString('pem')}\n`, keyPem: pemOfKey(keyDer) };
}

/** A positive 16-byte serial: the top bit is cleared so the DER integer needs no sign byte. */
function randomSerial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = bytes[0]! & 0x7f;
  return Buffer.from(bytes).toString('hex');
}

// ── checks ──────────────────────────────────────────────────────────────────────────────────────

/** Splits a PEM bundle into its certificates (unparsable blocks are dropped by the caller's checks). */
export function splitPemBundle(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)?.map((pem) => `${pem}\n`) ?? [];
}

export function parseCertificate(pem: string): NodeCertificate | undefined {
  try {
    return new NodeCertificate(pem);
  } catch {
    return undefined;
  }
}

/** Why stored material cannot be used as it is; `expiring` when it is sound but due for rotation. */
export interface MaterialProblem {
  readonly reason: string;
  readonly expiring: boolean;
}

function broken(reason: string): MaterialProblem {
  return { reason, expiring: false };
}

/** Why `pair` is not a usable CA at `now` with more than `minRemainingMs` left, or undefined when it is. */
export function caProblem(pair: Partial<KeyedCertificate>, now: Date, minRemainingMs: number): MaterialProblem | undefined {
  if (!pair.certPem || !pair.keyPem) return broken('the CA certificate or key is missing');
  const certificate = parseCertificate(pair.certPem);
  if (!certificate) return broken('the CA certificate does not parse');
  if (!certificate.ca) return broken('the CA certificate is not a CA');
  if (!keyMatches(certificate, pair.keyPem)) return broken('the CA key does not match the CA certificate');
  if (!certificate.verify(certificate.publicKey)) return broken('the CA certificate is not self-signed');
  return validityProblem(certificate, now, minRemainingMs, 'CA');
}

export interface ServingRequirements {
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
}

/** Why `pair` is not a usable serving certificate signed by `caPem`, or undefined when it is. */
export function servingProblem(
  pair: Partial<KeyedCertificate>,
  caPem: string,
  requirements: ServingRequirements,
  now: Date,
  minRemainingMs: number,
): MaterialProblem | undefined {
  if (!pair.certPem || !pair.keyPem) return broken('the serving certificate or key is missing');
  const certificate = parseCertificate(pair.certPem);
  const ca = parseCertificate(caPem);
  if (!certificate || !ca) return broken('the serving certificate does not parse');
  if (!keyMatches(certificate, pair.keyPem)) return broken('the serving key does not match the serving certificate');
  if (!certificate.checkIssued(ca) || !certificate.verify(ca.publicKey)) return broken('the serving certificate is not signed by the current CA');
  for (const name of requirements.dnsNames) {
    if (certificate.checkHost(name, { wildcards: false }) !== name) return broken(`the serving certificate does not cover ${name}`);
  }
  for (const ip of requirements.ipAddresses) {
    if (certificate.checkIP(ip) !== ip) return broken(`the serving certificate does not cover ${ip}`);
  }
  return validityProblem(certificate, now, minRemainingMs, 'serving certificate');
}

function keyMatches(certificate: NodeCertificate, keyPem: string): boolean {
  try {
    const derived = createPublicKey(createPrivateKey(keyPem)).export({ format: 'der', type: 'spki' });
    return derived.equals(certificate.publicKey.export({ format: 'der', type: 'spki' }));
  } catch {
    return false;
  }
}

function validityProblem(certificate: NodeCertificate, now: Date, minRemainingMs: number, what: string): MaterialProblem | undefined {
  const notBefore = new Date(certificate.validFrom).getTime();
  const notAfter = new Date(certificate.validTo).getTime();
  if (notBefore > now.getTime()) return broken(`the ${what} is not valid yet`);
  const expiry = new Date(notAfter).toISOString();
  if (notAfter <= now.getTime()) return broken(`the ${what} expired at ${expiry}`);
  if (notAfter - now.getTime() <= minRemainingMs) return { reason: `the ${what} expires at ${expiry}, within its rotation window`, expiring: true };
  return undefined;
}

export function notAfterOf(pem: string): Date | undefined {
  const certificate = parseCertificate(pem);
  return certificate ? new Date(certificate.validTo) : undefined;
}

export function fingerprintOf(pem: string): string | undefined {
  return parseCertificate(pem)?.fingerprint256;
}

// A CertificateSource over a certificate and key on disk (a mounted Secret, e.g. one cert-manager
// writes), after controller-runtime's certwatcher: the files are re-read on an interval and a new
// pair is signalled only when both parse and match, so a half-written update is never served.
// Polling, not fs.watch: kubelet updates Secret volumes by swapping a symlink, which watchers miss.
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import type { Logger } from '../../api/logging/logger.js';
import type { CertificateSource, ServingCertificate } from './certificate-source.js';

export interface FileCertificateSourceOptions {
  readonly certFile: string;
  readonly keyFile: string;
  readonly logger: Logger;
  /** How often the files are read again (default 10 s). */
  readonly intervalMs?: number;
}

/** Why `pair` cannot be served, or undefined when the key belongs to the certificate. */
function pairProblem(pair: ServingCertificate): string | undefined {
  try {
    const certificate = new X509Certificate(pair.cert);
    const derived = createPublicKey(createPrivateKey(pair.key)).export({ format: 'der', type: 'spki' });
    return derived.equals(certificate.publicKey.export({ format: 'der', type: 'spki' })) ? undefined : 'the key does not match the certificate';
  } catch (error) {
    return (error as Error).message;
  }
}

export class FileCertificateSource implements CertificateSource {
  private readonly options: FileCertificateSourceOptions;
  private readonly events = new EventEmitter();
  private certificate: ServingCertificate | undefined;
  private timer: NodeJS.Timeout | undefined;

  private constructor(options: FileCertificateSourceOptions) {
    this.options = options;
  }

  /** Reads the pair once (failing if it is unusable) and then keeps watching it. */
  static async open(options: FileCertificateSourceOptions): Promise<FileCertificateSource> {
    const source = new FileCertificateSource(options);
    const pair = await source.read();
    const problem = pairProblem(pair);
    if (problem) throw new Error(`${options.certFile} / ${options.keyFile}: ${problem}`);
    source.certificate = pair;
    source.timer = setInterval(() => void source.refresh(), options.intervalMs ?? 10_000);
    source.timer.unref();
    return source;
  }

  current(): ServingCertificate {
    return this.certificate!;
  }

  onChange(listener: (certificate: ServingCertificate) => void): () => void {
    this.events.on('change', listener);
    return () => this.events.off('change', listener);
  }

  /** Re-reads the files now; signals and returns true when a new, usable pair was found. */
  async refresh(): Promise<boolean> {
    let pair: ServingCertificate;
    try {
      pair = await this.read();
    } catch (error) {
      this.options.logger.warn({ err: error, certFile: this.options.certFile }, 'cannot read the serving certificate; keeping the current one');
      return false;
    }
    if (pair.cert === this.certificate?.cert && pair.key === this.certificate.key) return false;
    const problem = pairProblem(pair);
    if (problem) {
      // Certificate and key are written one after the other; the next read sees both.
      this.options.logger.warn({ certFile: this.options.certFile, problem }, 'serving certificate not usable yet; keeping the current one');
      return false;
    }
    this.certificate = pair;
    this.events.emit('change', pair);
    return true;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async read(): Promise<ServingCertificate> {
    const [cert, key] = await Promise.all([readFile(this.options.certFile, 'utf8'), readFile(this.options.keyFile, 'utf8')]);
    return { cert, key };
  }
}

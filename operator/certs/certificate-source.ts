// Where a TLS server gets its certificate from, certwatcher style: the current pair, and a signal
// when it changes so the server swaps its secure context without a restart.
import { EventEmitter } from 'node:events';

export interface ServingCertificate {
  /** PEM certificate chain presented to clients. */
  readonly cert: string;
  /** PEM private key of the leaf certificate. */
  readonly key: string;
}

export interface CertificateSource {
  /** The pair to serve now; throws when there is none yet (the server must not start without one). */
  current(): ServingCertificate;
  /** Calls `listener` with every new pair; returns the function that stops the calls. */
  onChange(listener: (certificate: ServingCertificate) => void): () => void;
}

/** A source whose pair is set by its owner: for a certificate given on the command line, and for tests. */
export class StaticCertificateSource implements CertificateSource {
  private certificate: ServingCertificate | undefined;
  private readonly events = new EventEmitter();

  constructor(certificate?: ServingCertificate) {
    this.certificate = certificate;
  }

  current(): ServingCertificate {
    if (!this.certificate) throw new Error('no serving certificate has been set yet');
    return this.certificate;
  }

  set(certificate: ServingCertificate): void {
    this.certificate = certificate;
    this.events.emit('change', certificate);
  }

  onChange(listener: (certificate: ServingCertificate) => void): () => void {
    this.events.on('change', listener);
    return () => this.events.off('change', listener);
  }
}

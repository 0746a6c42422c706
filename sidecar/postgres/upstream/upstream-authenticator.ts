// Answers the server's Authentication requests with the sidecar's credential: SCRAM-SHA-256
// (preferred), MD5 or cleartext, each only if accepted for this resource. It also enforces the
// order of the exchange, so a server cannot skip the SCRAM proof and jump to AuthenticationOk.
import { GatehouseError } from '../../../api/errors.js';
import type { AuthenticationMessage } from '../protocol/backend-messages.js';
import { encodePasswordMessage, encodeSASLInitialResponse, encodeSASLResponse } from '../protocol/frontend-encoders.js';
import { md5PasswordResponse } from './md5-password.js';
import { SCRAM_SHA_256, ScramClient } from './scram-client.js';
import { protocolError } from './upstream-errors.js';

/** `trust` is a server that lets the user in without asking for the password. */
export type UpstreamAuthMethod = 'scram-sha-256' | 'md5' | 'password' | 'trust';

export const ALL_UPSTREAM_AUTH_METHODS: readonly UpstreamAuthMethod[] = ['scram-sha-256', 'md5', 'password', 'trust'];

export interface UpstreamCredentials {
  readonly user: string;
  readonly password: string;
  readonly accepted: readonly UpstreamAuthMethod[];
  readonly address: string;
}

type Stage = 'start' | 'password sent' | 'scram first sent' | 'scram final sent' | 'scram verified' | 'done';

const OTHER_METHOD_NAMES: Readonly<Record<number, string>> = { 2: 'Kerberos V5', 7: 'GSSAPI', 8: 'GSSAPI', 9: 'SSPI' };

export class UpstreamAuthenticator {
  private stage: Stage = 'start';
  private scram: ScramClient | undefined;
  /** What the login used; stays `trust` if the server never asks for the password. */
  private method: UpstreamAuthMethod = 'trust';

  constructor(
    private readonly credentials: UpstreamCredentials,
    private readonly send: (frame: Buffer) => void,
  ) {}

  /** Handles one request; resolves with the method used once the server has let us in, else `undefined`. */
  async handle(request: AuthenticationMessage): Promise<UpstreamAuthMethod | undefined> {
    switch (request.kind) {
      case 'AuthenticationOk': return this.onOk();
      case 'AuthenticationCleartextPassword':
        this.begin('password');
        this.send(encodePasswordMessage(this.credentials.password));
        return this.advance('password sent');
      case 'AuthenticationMD5Password':
        this.begin('md5');
        this.send(encodePasswordMessage(md5PasswordResponse(this.credentials.user, this.credentials.password, request.salt)));
        return this.advance('password sent');
      case 'AuthenticationSASL': return this.onSasl(request.mechanisms);
      case 'AuthenticationSASLContinue': return this.onSaslContinue(request.data);
      case 'AuthenticationSASLFinal': return this.onSaslFinal(request.data);
      case 'AuthenticationOther':
        throw new GatehouseError('GH_ERR_PG_UPSTREAM_AUTH_UNSUPPORTED', {
          address: this.credentials.address, method: OTHER_METHOD_NAMES[request.code] ?? `code ${request.code}`,
        });
    }
  }

  private onOk(): UpstreamAuthMethod {
    if (this.stage === 'start') this.begin('trust');
    else if (this.stage === 'scram first sent' || this.stage === 'scram final sent') {
      throw new GatehouseError('GH_ERR_PG_UPSTREAM_SERVER_PROOF', {
        address: this.credentials.address, detail: 'it accepted the login without completing the SCRAM exchange',
      });
    }
    this.stage = 'done';
    return this.method;
  }

  private onSasl(mechanisms: readonly string[]): undefined {
    if (!mechanisms.includes(SCRAM_SHA_256)) {
      throw new GatehouseError('GH_ERR_PG_UPSTREAM_AUTH_UNSUPPORTED', {
        address: this.credentials.address, method: `SASL (${mechanisms.join(', ')})`,
      });
    }
    this.begin('scram-sha-256');
    this.scram = new ScramClient({ password: this.credentials.password, server: this.credentials.address });
    this.send(encodeSASLInitialResponse(SCRAM_SHA_256, Buffer.from(this.scram.clientFirstMessage)));
    return this.advance('scram first sent');
  }

  private async onSaslContinue(data: Buffer): Promise<undefined> {
    const scram = this.expectStage('scram first sent', 'AuthenticationSASLContinue');
    this.send(encodeSASLResponse(Buffer.from(await scram.answerServerFirst(data.toString('utf8')))));
    return this.advance('scram final sent');
  }

  private onSaslFinal(data: Buffer): undefined {
    const scram = this.expectStage('scram final sent', 'AuthenticationSASLFinal');
    scram.verifyServerFinal(data.toString('utf8'));
    this.scram = undefined;
    return this.advance('scram verified');
  }

  /** Starts a method: only from the initial stage, and only if this resource accepts it. */
  private begin(method: UpstreamAuthMethod): void {
    if (this.stage !== 'start') {
      throw protocolError(this.credentials.address, 'authentication', `a second authentication request (${method}) after ${this.stage}`);
    }
    if (!this.credentials.accepted.includes(method)) {
      throw new GatehouseError('GH_ERR_PG_UPSTREAM_AUTH_NOT_ACCEPTED', {
        address: this.credentials.address, method, accepted: this.credentials.accepted.join(', '),
      });
    }
    this.method = method;
  }

  private expectStage(stage: Stage, message: string): ScramClient {
    if (this.stage !== stage || this.scram === undefined) {
      throw protocolError(this.credentials.address, 'authentication', `${message} after ${this.stage}`);
    }
    return this.scram;
  }

  private advance(stage: Stage): undefined {
    this.stage = stage;
    return undefined;
  }
}

// The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL uses it, with node:crypto.
// It also checks the server's signature: a server that cannot prove it holds the password's
// verifier is treated as an impostor, even if it then says AuthenticationOk.
//
// Channel binding (SCRAM-SHA-256-PLUS) is deliberately not offered: it needs the tls-server-end-point
// hash of the server certificate, computed with the certificate's own signature hash, which Node 20
// does not expose; a half-done binding would be worse than none. So the client sends the "n" GS2
// flag and plain SCRAM-SHA-256. In verify-full mode TLS already authenticates the server.
import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { GatehouseError } from '../../../api/errors.js';
import { saslprep } from './saslprep.js';

export const SCRAM_SHA_256 = 'SCRAM-SHA-256';

/** PostgreSQL's default is 4096; a cap keeps a hostile server from making us burn CPU for minutes. */
export const DEFAULT_MAX_SCRAM_ITERATIONS = 1_000_000;

const pbkdf2Async = promisify(pbkdf2);
/** base64("n,,"): the GS2 header for "no channel binding", echoed in the client-final message. */
const GS2_HEADER = 'n,,';
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const PRINTABLE_NONCE = /^[\x21-\x2b\x2d-\x7e]+$/;

export interface ScramClientOptions {
  readonly password: string;
  /** The server's host:port, named in errors. */
  readonly server: string;
  /** PostgreSQL ignores the SCRAM user name (it uses the startup user), so libpq and we send an empty one. */
  readonly username?: string;
  /** Fixed client nonce, for test vectors only. */
  readonly nonce?: string;
  readonly maxIterations?: number;
}

export class ScramClient {
  readonly clientFirstMessage: string;
  private readonly clientFirstBare: string;
  private readonly clientNonce: string;
  private password: Buffer | undefined;
  private expectedServerSignature: Buffer | undefined;
  private readonly server: string;
  private readonly maxIterations: number;

  constructor(options: ScramClientOptions) {
    this.server = options.server;
    this.maxIterations = options.maxIterations ?? DEFAULT_MAX_SCRAM_ITERATIONS;
    this.clientNonce = options.nonce ?? randomBytes(18).toString('base64');
    this.password = Buffer.from(saslprep(options.password), 'utf8');
    this.clientFirstBare = `n=${escapeSaslName(options.username ?? '')},r=${this.clientNonce}`;
    this.clientFirstMessage = GS2_HEADER + this.clientFirstBare;
  }

  /** Answers the server-first message with the client-final message (carrying the proof). */
  async answerServerFirst(serverFirst: string): Promise<string> {
    const password = this.password;
    if (password === undefined) this.fail('server-first message arrived twice');
    this.password = undefined;
    const { nonce, salt, iterations } = this.parseServerFirst(serverFirst);
    const saltedPassword = await pbkdf2Async(password, salt, iterations, 32, 'sha256');
    password.fill(0);
    const clientFinalWithoutProof = `c=${Buffer.from(GS2_HEADER).toString('base64')},r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${clientFinalWithoutProof}`;
    const clientKey = hmac(saltedPassword, 'Client Key');
    const clientSignature = hmac(createHash('sha256').update(clientKey).digest(), authMessage);
    const proof = xor(clientKey, clientSignature);
    this.expectedServerSignature = hmac(hmac(saltedPassword, 'Server Key'), authMessage);
    saltedPassword.fill(0);
    clientKey.fill(0);
    return `${clientFinalWithoutProof},p=${proof.toString('base64')}`;
  }

  /** Checks the server-final message; throws GH_ERR_PG_UPSTREAM_SERVER_PROOF unless the server proved itself. */
  verifyServerFinal(serverFinal: string): void {
    const expected = this.expectedServerSignature;
    if (expected === undefined) this.fail('server-final message arrived before the server-first message');
    this.expectedServerSignature = undefined;
    const attributes = parseAttributes(serverFinal);
    const error = attributes.get('e');
    if (error !== undefined) this.fail(`server reported SCRAM error "${error}"`);
    const verifier = attributes.get('v');
    if (verifier === undefined || !BASE64.test(verifier)) this.fail('server-final message has no valid verifier');
    const signature = Buffer.from(verifier, 'base64');
    if (signature.length !== expected.length || !timingSafeEqual(signature, expected)) {
      throw new GatehouseError('GH_ERR_PG_UPSTREAM_SERVER_PROOF', { address: this.server, detail: 'SCRAM server signature does not match' });
    }
  }

  private parseServerFirst(serverFirst: string): { nonce: string; salt: Buffer; iterations: number } {
    if (serverFirst.startsWith('m=')) this.fail('server requires an unsupported SCRAM extension');
    const attributes = parseAttributes(serverFirst);
    const nonce = attributes.get('r') ?? '';
    const salt = attributes.get('s') ?? '';
    const iterations = attributes.get('i') ?? '';
    if (!PRINTABLE_NONCE.test(nonce) || !nonce.startsWith(this.clientNonce) || nonce.length === this.clientNonce.length) {
      this.fail('server nonce does not extend the client nonce');
    }
    if (salt === '' || !BASE64.test(salt)) this.fail('salt is not base64');
    if (!/^[1-9][0-9]{0,9}$/.test(iterations) || Number(iterations) > this.maxIterations) {
      this.fail(`iteration count ${JSON.stringify(iterations.slice(0, 12))} is not between 1 and ${this.maxIterations}`);
    }
    return { nonce, salt: Buffer.from(salt, 'base64'), iterations: Number(iterations) };
  }

  private fail(detail: string): never {
    throw new GatehouseError('GH_ERR_PG_UPSTREAM_PROTOCOL', { address: this.server, phase: 'SCRAM authentication', detail });
  }
}

/** "a=1,b=2" into a map; the first occurrence of an attribute wins. */
function parseAttributes(message: string): Map<string, string> {
  const attributes = new Map<string, string>();
  for (const part of message.split(',')) {
    if (part.length >= 2 && part[1] === '=' && !attributes.has(part[0])) attributes.set(part[0], part.slice(2));
  }
  return attributes;
}

function escapeSaslName(name: string): string {
  return name.replaceAll('=', '=3D').replaceAll(',', '=2C');
}

function hmac(key: Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] ^ b[i];
  return out;
}

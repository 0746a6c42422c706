// A stand-in for the identity module in tests and benchmarks: tokens of the form
// `token-for:<node>` prove that node; anything else is refused as expired.
import { GatehouseError } from '../../../api/errors.js';
import type { AuthenticationResult, NodeAuthenticator } from '../node-stream.js';

/** Accepts `token-for:<node>` for that node; anything else is an expired token. */
export class FakeAuthenticator implements NodeAuthenticator {
  calls = 0;
  /** When set, authenticate throws it (the identity backend is down). */
  outage: Error | undefined;
  /** When set, proofs run out this long after they are given. */
  validForMs: number | undefined;

  static tokenFor(nodeId: string): string {
    return `token-for:${nodeId}`;
  }

  async authenticate(token: string, _nodeId: string): Promise<AuthenticationResult> {
    this.calls += 1;
    if (this.outage) throw this.outage;
    if (!token.startsWith('token-for:')) return new GatehouseError('GH_ERR_TOKEN_EXPIRED', { detail: 'exp is in the past' });
    const nodeId = token.slice('token-for:'.length);
    return this.validForMs === undefined ? { nodeId } : { nodeId, expiresAtMs: Date.now() + this.validForMs };
  }
}

// The ES256 keys JWT credentials are signed with, rotated on a schedule. A new key is published in
// the JWKS `prepublishMs` before it starts signing, so verifiers that cache the JWKS already know it;
// an old key stays published until every token it signed has expired (plus leeway for clock skew).
// Keys live in memory only (private keys are non-extractable CryptoKeys): an operator restart starts
// a new ring, and the credentials signed before it are re-issued anyway.
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import type { Clock } from './scheduler.js';

export const SIGNING_ALGORITHM = 'ES256';

export interface SigningKey {
  readonly kid: string;
  readonly privateKey: CryptoKey;
  /** The public half as published: kty, crv, x, y, kid, alg, use. */
  readonly publicJwk: JWK;
  /** From when it signs (it is published from creation). */
  readonly activeFrom: number;
}

interface RingKey extends SigningKey {
  /** Latest expiry among tokens it signed; it must stay published until then. */
  lastExpiry: number;
}

export interface SigningKeyRingOptions {
  readonly clock: Clock;
  /** How long a key signs before the next one takes over. */
  readonly rotationIntervalMs: number;
  /** How long before taking over a new key is published; keep it above verifiers' JWKS cache time. */
  readonly prepublishMs: number;
  /** Extra time old keys stay published after their last token expired (verifiers' clock skew). */
  readonly leewayMs: number;
}

async function createKey(activeFrom: number): Promise<RingKey> {
  const { privateKey, publicKey } = await generateKeyPair(SIGNING_ALGORITHM);
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { kid, privateKey, publicJwk: { ...jwk, kid, alg: SIGNING_ALGORITHM, use: 'sig' }, activeFrom, lastExpiry: 0 };
}

export class SigningKeyRing {
  private current: RingKey | undefined;
  private next: RingKey | undefined;
  private retired: RingKey[] = [];
  /** Serialises maintenance so concurrent callers never generate two keys for one slot. */
  private maintenance: Promise<void> = Promise.resolve();

  constructor(private readonly options: SigningKeyRingOptions) {}

  /** The key to sign with now, rotating first when its time is up. */
  async signingKey(): Promise<SigningKey> {
    await this.maintain();
    return this.current!;
  }

  /** Records that `key` signed a token valid until `expiresAt`, so it stays published that long. */
  recordSigned(key: SigningKey, expiresAt: number): void {
    const ringKey = [this.current, this.next, ...this.retired].find((candidate) => candidate?.kid === key.kid);
    if (ringKey !== undefined) ringKey.lastExpiry = Math.max(ringKey.lastExpiry, expiresAt);
  }

  /** Every key a verifier may meet: the signing key, the next one, and retired keys with live tokens. */
  async publicKeys(): Promise<JWK[]> {
    await this.maintain();
    return [this.current, this.next, ...this.retired].filter((key) => key !== undefined).map((key) => ({ ...key.publicJwk }));
  }

  /** Replaces the signing key now (e.g. on suspected compromise of the process memory). */
  async rotate(): Promise<void> {
    await this.serialised(async () => {
      const now = this.options.clock.now();
      const replacement = this.next ?? (await createKey(now));
      this.next = undefined;
      this.promote({ ...replacement, activeFrom: now });
    });
  }

  private maintain(): Promise<void> {
    return this.serialised(() => this.rotateIfDue());
  }

  private async serialised(work: () => Promise<void>): Promise<void> {
    const run = this.maintenance.then(work);
    this.maintenance = run.catch(() => undefined);
    await run;
  }

  private async rotateIfDue(): Promise<void> {
    const { clock, rotationIntervalMs, prepublishMs } = this.options;
    const now = clock.now();
    this.current ??= await createKey(now);
    const takeover = this.current.activeFrom + rotationIntervalMs;
    if (this.next === undefined && now >= takeover - prepublishMs) this.next = await createKey(Math.max(takeover, now));
    if (this.next !== undefined && now >= this.next.activeFrom) {
      const next = this.next;
      this.next = undefined;
      this.promote(next);
    }
    this.prune(now);
  }

  private promote(key: RingKey): void {
    if (this.current !== undefined) this.retired.push(this.current);
    this.current = key;
  }

  private prune(now: number): void {
    this.retired = this.retired.filter((key) => now <= key.lastExpiry + this.options.leewayMs);
  }
}

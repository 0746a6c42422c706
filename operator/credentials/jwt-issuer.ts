// The `jwt` strategy: short-lived ES256 tokens the sidecar presents upstream as a bearer token.
// aud is the resource (its address by default), sub the identity (namespace/name); groups and scope
// (the operations some rule may allow, space-separated as in OAuth) let the service make coarse
// decisions of its own. Services verify against the JWKS (jwks-handler.ts serves it).
//
// Tokens cannot be renewed, so the manager rotates them: a new token at two thirds of the TTL, the
// old one left to expire. Revocation cannot recall a token from a verifier; it only stops Gatehouse
// delivering it, which is why the TTL is the bound on a leaked token's life.
import { randomUUID } from 'node:crypto';
import { SignJWT, type JSONWebKeySet } from 'jose';
import type { PolicyRuleT, ProtectedResource } from '../../api/kinds/kinds.js';
import type { Logger } from '../../api/logging/logger.js';
import { silentLogger } from '../../api/logging/logger.js';
import { namespaceOf } from '../../api/manifests/config.js';
import { SQL_OPERATIONS, type SqlOperation } from '../../api/sql/operations.js';
import {
  assertUsableTtl, RENEW_FRACTION, type CredentialIssuer, type CredentialRequest, type IssuedCredential,
} from './credential-issuer.js';
import { systemScheduler, type Clock } from './scheduler.js';
import { SIGNING_ALGORITHM, SigningKeyRing } from './signing-keys.js';

const HOUR_MS = 3_600_000;
/** exp has second precision: anything shorter would expire before it is used. */
const MINIMUM_TTL_MS = 2_000;
/** Operations an HTTP request can be (api/policy/http.ts). */
const HTTP_OPERATIONS: readonly SqlOperation[] = ['read', 'write', 'delete'];

export interface JwtIssuerOptions {
  /** The iss claim verifiers check; default `gatehouse`. */
  readonly issuer?: string;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** How long one signing key signs; default 6h. */
  readonly rotationIntervalMs?: number;
  /** How early the next key is published; default the smaller of 15m and a quarter of the interval. */
  readonly prepublishMs?: number;
  /** How long keys outlive their last token in the JWKS; default 60s. */
  readonly leewayMs?: number;
  /** The aud claim for a resource; default its spec.address. */
  readonly audience?: (resource: ProtectedResource) => string;
}

/** A JWKS as served: the public keys only. */
export type JwksDocument = JSONWebKeySet;

function covers(rule: PolicyRuleT, operation: SqlOperation): boolean {
  return rule.operations === undefined || rule.operations.includes(operation);
}

/** A deny rule with no tables, paths or unboundedWrite denies its operations everywhere. */
function deniesEverywhere(rule: PolicyRuleT, operation: SqlOperation): boolean {
  return rule.effect === 'deny' && covers(rule, operation) && rule.tables === undefined && rule.paths === undefined && rule.unboundedWrite !== true;
}

/**
 * Operations some non-deny rule of the applicable policies may let through somewhere on the
 * resource, minus those denied everywhere. Coarse on purpose: the sidecar enforces the details.
 */
export function tokenScope(request: CredentialRequest): SqlOperation[] {
  const { policy } = request;
  const rules = request.policies
    .filter((candidate) => namespaceOf(candidate) === policy.namespace && policy.policies.includes(candidate.metadata.name))
    .flatMap((candidate) => candidate.spec.rules);
  const operations = request.resource.spec.protocol === 'http' ? HTTP_OPERATIONS : SQL_OPERATIONS;
  return operations.filter(
    (operation) =>
      rules.some((rule) => rule.effect !== 'deny' && covers(rule, operation)) && !rules.some((rule) => deniesEverywhere(rule, operation)),
  );
}

export class JwtIssuer implements CredentialIssuer {
  readonly strategy = 'jwt';
  private readonly issuer: string;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly audience: (resource: ProtectedResource) => string;
  private readonly keys: SigningKeyRing;

  constructor(options: JwtIssuerOptions = {}) {
    const rotationIntervalMs = options.rotationIntervalMs ?? 6 * HOUR_MS;
    this.issuer = options.issuer ?? 'gatehouse';
    this.clock = options.clock ?? systemScheduler;
    this.logger = (options.logger ?? silentLogger()).child({ component: 'jwt-issuer' });
    this.audience = options.audience ?? ((resource) => resource.spec.address);
    this.keys = new SigningKeyRing({
      clock: this.clock,
      rotationIntervalMs,
      prepublishMs: options.prepublishMs ?? Math.min(15 * 60_000, rotationIntervalMs / 4),
      leewayMs: options.leewayMs ?? 60_000,
    });
  }

  async issue(request: CredentialRequest): Promise<IssuedCredential> {
    assertUsableTtl(request, MINIMUM_TTL_MS);
    const now = this.clock.now();
    const key = await this.keys.signingKey();
    const subject = `${namespaceOf(request.identity)}/${request.identity.metadata.name}`;
    const expiresAt = Math.floor((now + request.ttlMs) / 1000) * 1000;
    const jti = randomUUID();
    const token = await new SignJWT({ groups: request.identity.spec.groups ?? [], scope: tokenScope(request).join(' ') })
      .setProtectedHeader({ alg: SIGNING_ALGORITHM, kid: key.kid, typ: 'JWT' })
      .setIssuer(this.issuer)
      .setSubject(subject)
      .setAudience(this.audience(request.resource))
      .setIssuedAt(Math.floor(now / 1000))
      .setExpirationTime(expiresAt / 1000)
      .setJti(jti)
      .sign(key.privateKey);
    this.keys.recordSigned(key, expiresAt);
    this.logger.info({ identity: subject, resource: request.resource.metadata.name, jti, kid: key.kid, expiresAt }, 'issued token');
    const renewAt = now + Math.floor(request.ttlMs * RENEW_FRACTION);
    return { strategy: 'jwt', id: `jti/${jti}`, username: subject, password: token, issuedAt: now, expiresAt, renewAt };
  }

  /** Nothing to recall: the token dies at exp. The manager stops delivering it. */
  async revoke(_credential: IssuedCredential, _resource: ProtectedResource): Promise<void> {}

  /** The public keys verifiers need: the signing key, the next one, and old ones with live tokens. */
  async jwks(): Promise<JwksDocument> {
    return { keys: await this.keys.publicKeys() };
  }

  /** Switches to a new signing key now; tokens signed before stay verifiable until they expire. */
  async rotateKeys(): Promise<void> {
    await this.keys.rotate();
  }
}

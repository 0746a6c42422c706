// Verifies a sidecar's projected ServiceAccount token offline, against the cluster issuer's JWKS:
// signature, algorithm, issuer, audience `gatehouse`, exp/nbf, then the kubernetes.io claims that
// say which namespace, ServiceAccount and pod the token was minted for. The identity is derived
// from those verified claims only.
import type { JWTPayload } from 'jose';
import { GatehouseError } from '../../api/errors.js';
import { checkAlgorithms, checkClockSkew, verifyJwt, type JwtExpectations } from './jwt-verification.js';
import { createKeySet, type JwksSource } from './key-set.js';
import {
  GATEHOUSE_AUDIENCE,
  isObjectName,
  serviceAccountUsername,
  type PodReference,
  type ServiceAccountVerifier,
  type ServiceAccountWorkload,
} from './workload-identity.js';

export interface ServiceAccountTokenVerifierOptions {
  /** The cluster's ServiceAccount issuer (kube-apiserver --service-account-issuer), matched exactly. */
  readonly issuer: string;
  /** The issuer's keys: its JWKS URL (in cluster: https://kubernetes.default.svc/openid/v1/jwks) or a static set. */
  readonly jwks: JwksSource;
  /** Default `gatehouse`. */
  readonly audience?: string;
  /** Asymmetric algorithms accepted; default RS256 and ES256. */
  readonly algorithms?: readonly string[];
  /** Tolerance for exp and nbf between the issuer's clock and ours; default 30 s. */
  readonly clockSkewSeconds?: number;
  /** Refuse tokens issued longer ago than this, whatever their exp (iat required then). */
  readonly maxTokenAgeSeconds?: number;
  /** Require the token to be bound to a pod (as projected volume tokens are). Default true. */
  readonly requirePod?: boolean;
  /** The clock; injected by tests. */
  readonly now?: () => Date;
}

export function createServiceAccountTokenVerifier(options: ServiceAccountTokenVerifierOptions): ServiceAccountVerifier {
  const keySet = createKeySet(options.jwks);
  const expect: JwtExpectations = {
    issuer: options.issuer,
    audiences: [options.audience ?? GATEHOUSE_AUDIENCE],
    algorithms: checkAlgorithms(options.algorithms),
    clockSkewSeconds: checkClockSkew(options.clockSkewSeconds),
    now: options.now ?? (() => new Date()),
    keySource: keySet.description,
    maxTokenAgeSeconds: options.maxTokenAgeSeconds,
  };
  const requirePod = options.requirePod ?? true;
  return {
    async verify(token: string): Promise<ServiceAccountWorkload> {
      const claims = await verifyJwt(token, keySet.keys, expect);
      return { ...serviceAccountFromClaims(claims, requirePod), expiresAt: new Date(claims.exp * 1000) };
    },
  };
}

type ServiceAccountClaims = Omit<ServiceAccountWorkload, 'expiresAt'>;

/** Reads the kubernetes.io claim and checks that sub names the same ServiceAccount. */
export function serviceAccountFromClaims(claims: JWTPayload, requirePod: boolean): ServiceAccountClaims {
  const kubernetes = objectClaim(claims['kubernetes.io'], 'kubernetes.io');
  const namespace = nameClaim(kubernetes.namespace, 'kubernetes.io.namespace');
  const account = objectClaim(kubernetes.serviceaccount, 'kubernetes.io.serviceaccount');
  const serviceAccount = nameClaim(account.name, 'kubernetes.io.serviceaccount.name');
  const serviceAccountUid = uidClaim(account.uid, 'kubernetes.io.serviceaccount.uid');
  const pod = podClaim(kubernetes.pod, requirePod);
  checkSubject(claims.sub, serviceAccountUsername(namespace, serviceAccount));
  return { kind: 'serviceaccount', namespace, serviceAccount, serviceAccountUid, ...(pod ? { pod } : {}) };
}

function podClaim(value: unknown, required: boolean): PodReference | undefined {
  if (value === undefined && !required) return undefined;
  const pod = objectClaim(value, 'kubernetes.io.pod');
  return { name: nameClaim(pod.name, 'kubernetes.io.pod.name'), uid: uidClaim(pod.uid, 'kubernetes.io.pod.uid') };
}

// A valid signature with a sub that disagrees with kubernetes.io means a misbehaving issuer;
// neither half is trusted then.
function checkSubject(sub: unknown, expected: string): void {
  if (typeof sub !== 'string') throw claimProblem('sub', sub === undefined ? 'missing' : 'invalid');
  if (sub !== expected) {
    throw new GatehouseError('GH_ERR_TOKEN_SUBJECT', {
      expected: 'the ServiceAccount in its kubernetes.io claim',
      detail: ` (${expected})`,
    });
  }
}

function objectClaim(value: unknown, claim: string): Record<string, unknown> {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  throw claimProblem(claim, value === undefined ? 'missing' : 'invalid');
}

function nameClaim(value: unknown, claim: string): string {
  if (isObjectName(value)) return value;
  throw claimProblem(claim, value === undefined ? 'missing' : 'invalid');
}

function uidClaim(value: unknown, claim: string): string {
  if (typeof value === 'string' && value.length > 0 && value.length <= 128) return value;
  throw claimProblem(claim, value === undefined ? 'missing' : 'invalid');
}

function claimProblem(claim: string, reason: 'missing' | 'invalid'): GatehouseError {
  return new GatehouseError('GH_ERR_TOKEN_CLAIMS', {
    claim,
    reason,
    hint: 'present a projected ServiceAccount token (serviceAccountToken volume), which Kubernetes binds to the pod',
  });
}

// The signed checkpoint that closes a recording: a JWS (compact, ES256) over the session id, the
// event count, the last hash and the first/last event times, made with the operator's signing
// key. Whoever holds the public key can prove a file is whole: the chain shows no event was
// changed in place, the checkpoint shows none was added or cut off at the end.
import { createPublicKey } from 'node:crypto';
import {
  calculateJwkThumbprint, CompactSign, compactVerify, decodeProtectedHeader, exportJWK, generateKeyPair, importJWK, importPKCS8,
  type CryptoKey, type JWK,
} from 'jose';
import { canonicalJson, isJsonObject } from './canonical-json.js';
import type { SealStatus } from './recording-format.js';

export const CHECKPOINT_ALGORITHM = 'ES256';
export const CHECKPOINT_TYPE = 'gatehouse-recording-checkpoint+jws';

export interface CheckpointPayload {
  readonly session: string;
  readonly part: number;
  readonly node: string;
  readonly status: SealStatus;
  /** Events in this file. */
  readonly events: number;
  readonly firstSeq: number;
  /** firstSeq - 1 when the file holds no event. */
  readonly lastSeq: number;
  readonly headerHash: string;
  /** The last event's hash (the header's when there is none). */
  readonly lastHash: string;
  /** First and last event times; absent when there is no event. */
  readonly firstAt?: string;
  readonly lastAt?: string;
  readonly sealedAt: string;
  /** The signing key's id (its RFC 7638 thumbprint), also in the JWS header. */
  readonly kid: string;
}

/** Signs checkpoints with the operator's recording key. */
export interface CheckpointSigner {
  readonly kid: string;
  /** The public half, as a JWK with kid, alg and use, for `gatehouse sessions verify --key`. */
  readonly publicJwk: JWK;
  sign(payload: Omit<CheckpointPayload, 'kid'>): Promise<string>;
}

/** Public keys by kid. */
export type CheckpointKeys = ReadonlyMap<string, CryptoKey>;

async function signerFrom(privateKey: CryptoKey, publicJwk: JWK): Promise<CheckpointSigner> {
  const { kty, crv, x, y } = publicJwk;
  const kid = await calculateJwkThumbprint({ kty, crv, x, y });
  const published: JWK = { kty, crv, x, y, kid, alg: CHECKPOINT_ALGORITHM, use: 'sig' };
  return {
    kid,
    publicJwk: published,
    sign: (payload) =>
      new CompactSign(new TextEncoder().encode(canonicalJson({ ...payload, kid })))
        .setProtectedHeader({ alg: CHECKPOINT_ALGORITHM, kid, typ: CHECKPOINT_TYPE })
        .sign(privateKey),
  };
}

/** A fresh key, for local mode and tests; a cluster operator loads its key from a Secret instead. */
export async function generateCheckpointSigner(): Promise<CheckpointSigner> {
  const { privateKey, publicKey } = await generateKeyPair(CHECKPOINT_ALGORITHM, { extractable: false });
  return signerFrom(privateKey, await exportJWK(publicKey));
}

/** The operator's key from a PKCS#8 PEM (a P-256 EC private key, e.g. `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`). */
export async function checkpointSignerFromPem(pkcs8Pem: string): Promise<CheckpointSigner> {
  const privateKey = await importPKCS8(pkcs8Pem, CHECKPOINT_ALGORITHM);
  const publicJwk = createPublicKey(pkcs8Pem).export({ format: 'jwk' }) as JWK;
  return signerFrom(privateKey, publicJwk);
}

/**
 * Verification keys from a JWKS (`{"keys": [...]}`), a single JWK, or one or more PEM public keys
 * (SPKI; a private key's public half is taken too). Keys are indexed by their thumbprint, the kid
 * the signer uses, so a kid written into a JWKS cannot alias another key.
 */
export async function parseCheckpointKeys(text: string): Promise<CheckpointKeys> {
  const trimmed = text.trim();
  const jwks = trimmed.startsWith('{') ? jwksFrom(JSON.parse(trimmed) as unknown) : pemBlocks(trimmed).map((pem) => createPublicKey(pem).export({ format: 'jwk' }) as JWK);
  if (jwks.length === 0) throw new Error('no public key found (expected a JWKS, a JWK or PEM public keys)');
  const keys = new Map<string, CryptoKey>();
  for (const jwk of jwks) {
    if (jwk.kty !== 'EC' || jwk.crv !== 'P-256') continue;
    const { kty, crv, x, y } = jwk;
    const kid = await calculateJwkThumbprint({ kty, crv, x, y });
    keys.set(kid, (await importJWK({ kty, crv, x, y }, CHECKPOINT_ALGORITHM)) as CryptoKey);
  }
  if (keys.size === 0) throw new Error('no P-256 (ES256) public key found');
  return keys;
}

function jwksFrom(value: unknown): JWK[] {
  if (isJsonObject(value) && Array.isArray(value.keys)) return value.keys.filter(isJsonObject) as JWK[];
  if (isJsonObject(value) && typeof value.kty === 'string') return [value as JWK];
  throw new Error('JSON that is neither a JWKS nor a JWK');
}

function pemBlocks(text: string): string[] {
  return text.match(/-----BEGIN [A-Z ]+-----[\s\S]+?-----END [A-Z ]+-----/g) ?? [];
}

export type CheckpointCheck =
  | { readonly ok: true; readonly payload: CheckpointPayload }
  | { readonly ok: false; readonly kind: 'bad-checkpoint' | 'unknown-key' | 'bad-signature'; readonly message: string };

/** Checks the signature (ES256 only, key chosen by kid) and the payload's shape. */
export async function verifyCheckpoint(jws: string, keys: CheckpointKeys): Promise<CheckpointCheck> {
  let header;
  try {
    header = decodeProtectedHeader(jws);
  } catch {
    return { ok: false, kind: 'bad-checkpoint', message: 'the checkpoint is not a JWS in compact form' };
  }
  // Fail closed on anything but the one algorithm we sign with: `none`, HMAC with a public key as secret, ….
  if (header.alg !== CHECKPOINT_ALGORITHM) return { ok: false, kind: 'bad-signature', message: `the checkpoint uses algorithm ${String(header.alg)}; only ${CHECKPOINT_ALGORITHM} is accepted` };
  const key = typeof header.kid === 'string' ? keys.get(header.kid) : undefined;
  if (key === undefined) return { ok: false, kind: 'unknown-key', message: `the checkpoint is signed by key ${String(header.kid)}, which is not among the keys given` };
  let payloadBytes: Uint8Array;
  try {
    ({ payload: payloadBytes } = await compactVerify(jws, key, { algorithms: [CHECKPOINT_ALGORITHM] }));
  } catch {
    return { ok: false, kind: 'bad-signature', message: `the checkpoint signature does not verify with key ${header.kid}: it was forged or altered` };
  }
  let payload: unknown;
  try {
    payload = JSON.parse(new TextDecoder().decode(payloadBytes));
  } catch {
    return { ok: false, kind: 'bad-checkpoint', message: 'the checkpoint payload is not JSON' };
  }
  if (!isCheckpointPayload(payload) || payload.kid !== header.kid) return { ok: false, kind: 'bad-checkpoint', message: 'the checkpoint payload lacks required fields' };
  return { ok: true, payload };
}

function isCheckpointPayload(value: unknown): value is CheckpointPayload {
  if (!isJsonObject(value)) return false;
  const strings = ['session', 'node', 'status', 'headerHash', 'lastHash', 'sealedAt', 'kid'];
  const numbers = ['part', 'events', 'firstSeq', 'lastSeq'];
  return strings.every((field) => typeof value[field] === 'string') && numbers.every((field) => Number.isSafeInteger(value[field]));
}

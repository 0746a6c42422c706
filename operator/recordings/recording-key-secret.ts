// The operator's recording signing key, kept in one Secret in the operator's namespace: created
// when absent, reused when present, so every replica (and every restart) signs checkpoints with
// the same key and `gatehouse sessions verify --key` keeps working on older recordings. Replicas
// racing to create it settle on whichever create won.
import { generateKeyPairSync } from 'node:crypto';
import { GatehouseError } from '../../api/errors.js';
import type { Logger } from '../../api/logging/logger.js';
import { checkpointSignerFromPem, type CheckpointSigner } from '../../api/recordings/checkpoint.js';
import { isConflict } from '../kube/kube-errors.js';
import { RESOURCE_TYPES, type KubeClient, type KubeObject } from '../kube/kube-client.js';

export const DEFAULT_RECORDING_KEY_SECRET = 'gatehouse-recording-key';
/** The Secret's key holding the PKCS#8 PEM of the P-256 private key. */
export const RECORDING_KEY_FIELD = 'key.pem';

interface SecretObject extends KubeObject {
  type?: string;
  data?: Record<string, string>;
}

/** The part of the KubeClient this needs, so tests can hand in the loopback API server's client. */
export type RecordingKeyCluster = Pick<KubeClient, 'get' | 'create'>;

export interface RecordingKeyOptions {
  readonly client: RecordingKeyCluster;
  readonly namespace: string;
  readonly secretName?: string;
  readonly logger: Logger;
}

function newKeyPem(): string {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
}

async function readKeyPem(client: RecordingKeyCluster, namespace: string, name: string): Promise<string | undefined> {
  const secret = await client.get<SecretObject>(RESOURCE_TYPES.secrets, namespace, name);
  if (!secret) return undefined;
  const encoded = secret.data?.[RECORDING_KEY_FIELD];
  // Never overwritten: a new key would leave every recording signed so far unverifiable with the published one.
  if (!encoded) throw new GatehouseError('GH_ERR_RECORDING_SIGNING_KEY', { namespace, name, detail: `it has no ${RECORDING_KEY_FIELD}` });
  return Buffer.from(encoded, 'base64').toString('utf8');
}

async function signerOf(pem: string, namespace: string, name: string): Promise<CheckpointSigner> {
  try {
    return await checkpointSignerFromPem(pem);
  } catch (error) {
    throw new GatehouseError('GH_ERR_RECORDING_SIGNING_KEY', { namespace, name, detail: `${RECORDING_KEY_FIELD} is not a PKCS#8 P-256 private key` }, { cause: error });
  }
}

/** Reads the key from its Secret, creating the Secret with a fresh key when there is none. */
export async function loadRecordingSigner(options: RecordingKeyOptions): Promise<CheckpointSigner> {
  const { client, namespace } = options;
  const name = options.secretName ?? DEFAULT_RECORDING_KEY_SECRET;
  const existing = await readKeyPem(client, namespace, name);
  if (existing !== undefined) return signerOf(existing, namespace, name);
  const pem = newKeyPem();
  try {
    await client.create(RESOURCE_TYPES.secrets, {
      apiVersion: 'v1', kind: 'Secret', type: 'Opaque',
      metadata: { name, namespace, labels: { 'app.kubernetes.io/managed-by': 'gatehouse' } },
      data: { [RECORDING_KEY_FIELD]: Buffer.from(pem, 'utf8').toString('base64') },
    } as SecretObject);
  } catch (error) {
    if (!isConflict(error)) throw error;
    // Another replica created it first: use theirs.
    const theirs = await readKeyPem(client, namespace, name);
    if (theirs === undefined) throw error;
    return signerOf(theirs, namespace, name);
  }
  const signer = await signerOf(pem, namespace, name);
  options.logger.info({ namespace, name, kid: signer.kid }, 'recording signing key created');
  return signer;
}

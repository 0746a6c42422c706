// The recording key's Secret: replicas racing to create it end up with the winner's key, and a
// Secret that holds no usable key is refused, never overwritten (that would orphan old recordings).
import { generateKeyPairSync } from 'node:crypto';
import { GatehouseError } from '../../api/errors.js';
import { silentLogger } from '../../api/logging/logger.js';
import { checkpointSignerFromPem } from '../../api/recordings/checkpoint.js';
import type { KubeObject } from '../kube/kube-client.js';
import { loadRecordingSigner, RECORDING_KEY_FIELD, type RecordingKeyCluster } from './recording-key-secret.js';

type SecretObject = KubeObject & { data?: Record<string, string> };

/** A namespace's Secrets in memory, with a create that answers 409 like the API server when the name is taken. */
class SecretsInMemory {
  readonly secrets = new Map<string, SecretObject>();
  creates = 0;
  /** Runs just before a create is stored: a chance for "another replica" to win the race. */
  beforeCreate: (() => void) | undefined;

  readonly client: RecordingKeyCluster = {
    get: async <T extends KubeObject>(_type: unknown, _namespace: string | undefined, name: string) => this.secrets.get(name) as T | undefined,
    create: async <T extends KubeObject>(_type: unknown, object: T) => {
      this.creates += 1;
      this.beforeCreate?.();
      if (this.secrets.has(object.metadata.name!)) throw new GatehouseError('GH_ERR_KUBE_CONFLICT', { status: 409, verb: 'create', resource: 'secrets', name: object.metadata.name!, where: '', reason: 'AlreadyExists', detail: 'exists' });
      this.secrets.set(object.metadata.name!, object as SecretObject);
      return object;
    },
  } as RecordingKeyCluster;
}

function keyPem(): string {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
}

const options = (cluster: SecretsInMemory) => ({ client: cluster.client, namespace: 'gatehouse-system', logger: silentLogger() });

describe('loadRecordingSigner', () => {
  it('creates the Secret when absent and reuses it afterwards', async () => {
    const cluster = new SecretsInMemory();
    const first = await loadRecordingSigner(options(cluster));
    const second = await loadRecordingSigner(options(cluster));
    expect(cluster.creates).toBe(1);
    expect(second.kid).toBe(first.kid);
    const stored = Buffer.from(cluster.secrets.get('gatehouse-recording-key')!.data![RECORDING_KEY_FIELD]!, 'base64').toString('utf8');
    expect((await checkpointSignerFromPem(stored)).kid).toBe(first.kid);
  });

  it('uses the key of the replica that created the Secret first', async () => {
    const cluster = new SecretsInMemory();
    const theirs = keyPem();
    cluster.beforeCreate = () => {
      cluster.beforeCreate = undefined;
      cluster.secrets.set('gatehouse-recording-key', { metadata: { name: 'gatehouse-recording-key' }, data: { [RECORDING_KEY_FIELD]: Buffer.from(theirs).toString('base64') } });
    };
    const signer = await loadRecordingSigner(options(cluster));
    expect(signer.kid).toBe((await checkpointSignerFromPem(theirs)).kid);
  });

  it('refuses a Secret without a usable key and leaves it as it is', async () => {
    const cluster = new SecretsInMemory();
    cluster.secrets.set('gatehouse-recording-key', { metadata: { name: 'gatehouse-recording-key' }, data: { other: 'eA==' } });
    await expect(loadRecordingSigner(options(cluster))).rejects.toMatchObject({ code: 'GH_ERR_RECORDING_SIGNING_KEY' });
    cluster.secrets.set('gatehouse-recording-key', { metadata: { name: 'gatehouse-recording-key' }, data: { [RECORDING_KEY_FIELD]: Buffer.from('not a key').toString('base64') } });
    await expect(loadRecordingSigner(options(cluster))).rejects.toMatchObject({ code: 'GH_ERR_RECORDING_SIGNING_KEY' });
    expect(cluster.creates).toBe(0);
  });
});

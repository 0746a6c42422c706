import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { AuthenticationV1TokenRequest, CoreV1Api } from '@kubernetes/client-node';
import { silentLogger } from '../../api/logging/logger.js';
import { TokenProjector } from './token-projector.js';

type TokenApi = Pick<CoreV1Api, 'createNamespacedServiceAccountToken'>;

/** Records each TokenRequest and answers with a numbered token living `lifetimeMs`. */
function recordingTokenApi(lifetimeMs: number, failFirst = 0) {
  const requests: Array<{ name: string; namespace: string; body: AuthenticationV1TokenRequest }> = [];
  const api: TokenApi = {
    createNamespacedServiceAccountToken: async (param) => {
      requests.push(param);
      if (requests.length <= failFirst) throw new Error('serviceaccount not found');
      return { ...param.body, status: { token: `token-${requests.length}`, expirationTimestamp: new Date(Date.now() + lifetimeMs) } };
    },
  };
  return { api, requests };
}

const token = { volumeName: 'gatehouse-token', audiences: ['gatehouse'], expirationSeconds: 600, containerPath: '/var/run/x/token', relativePath: 'token' };

describe('TokenProjector', () => {
  let dir: string;
  beforeEach(async () => { dir = await mkdtemp(path.join(os.tmpdir(), 'token-projector-')); });
  afterEach(async () => { await rm(dir, { recursive: true, force: true }); });

  it('requests a pod-bound token and writes it owner-readable only', async () => {
    const { api, requests } = recordingTokenApi(600_000);
    const projector = new TokenProjector({ api, namespace: 'payments', serviceAccountName: 'ci-runner', pod: { name: 'web-1', uid: 'uid-1' }, volumeRoot: dir, logger: silentLogger() });
    await projector.start([token]);
    projector.stop();
    expect(requests).toHaveLength(1);
    expect(requests[0]).toMatchObject({
      name: 'ci-runner', namespace: 'payments',
      body: { spec: { audiences: ['gatehouse'], expirationSeconds: 600, boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: 'web-1', uid: 'uid-1' } } },
    });
    const file = path.join(dir, 'gatehouse-token', 'token');
    expect(await readFile(file, 'utf8')).toBe('token-1');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it('refreshes at 80% of the lifetime the server granted', async () => {
    const { api, requests } = recordingTokenApi(500);
    const projector = new TokenProjector({ api, namespace: 'ns', serviceAccountName: 'sa', pod: { name: 'p', uid: 'u' }, volumeRoot: dir, logger: silentLogger() });
    await projector.start([token]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(requests).toHaveLength(1);
    await new Promise((resolve) => setTimeout(resolve, 250));
    projector.stop();
    expect(requests.length).toBeGreaterThanOrEqual(2);
    expect(await readFile(path.join(dir, 'gatehouse-token', 'token'), 'utf8')).toBe(`token-${requests.length}`);
  });

  it('rejects start when no token can be had, and stops refreshing when stopped', async () => {
    const { api, requests } = recordingTokenApi(100, 1);
    const projector = new TokenProjector({ api, namespace: 'ns', serviceAccountName: 'sa', pod: { name: 'p', uid: 'u' }, volumeRoot: dir, logger: silentLogger() });
    await expect(projector.start([token])).rejects.toThrow('serviceaccount not found');
    await projector.start([token]);
    projector.stop();
    const count = requests.length;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(requests.length).toBe(count);
  });
});

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clusterJwks, discoverClusterIssuer, inClusterApiServer } from './in-cluster.js';
import { createServiceAccountTokenVerifier } from './token-verifier.js';
import { loopbackCertificate, startLoopbackServer, type LoopbackServer, type TlsMaterial } from './testing/loopback-servers.js';
import { CLUSTER_ISSUER, createTestKey, fixedClock, serviceAccountClaims, signToken, type TestKey } from './testing/token-fixtures.js';

let tls: TlsMaterial;
let key: TestKey;
let dir: string;
let apiServer: LoopbackServer;

beforeAll(async () => {
  [tls, key] = await Promise.all([loopbackCertificate(), createTestKey('ES256', 'sa-1')]);
});
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-sa-'));
  await writeFile(join(dir, 'ca.crt'), tls.cert);
  await writeFile(join(dir, 'token'), 'operator-token-1\n');
  // The API server serves issuer discovery and the keys only to authenticated callers.
  apiServer = await startLoopbackServer((request) => {
    if (request.headers.authorization !== 'Bearer operator-token-1') return { status: 401, body: { kind: 'Status', code: 401 } };
    if (request.path === '/.well-known/openid-configuration') {
      return { status: 200, body: { issuer: CLUSTER_ISSUER, jwks_uri: 'https://oidc.example/openid/v1/jwks' } };
    }
    if (request.path === '/openid/v1/jwks') return { status: 200, body: { keys: [key.jwk] } };
    return { status: 404, body: 'not found' };
  }, tls);
});
afterEach(async () => {
  await apiServer.close();
  await rm(dir, { recursive: true, force: true });
});

function env(): Record<string, string> {
  const { hostname, port } = new URL(apiServer.url);
  return { KUBERNETES_SERVICE_HOST: hostname, KUBERNETES_SERVICE_PORT: port };
}

describe('in-cluster access to the identity endpoints', () => {
  test('discovers the issuer and verifies pod tokens against the API server keys', async () => {
    const api = await inClusterApiServer(env(), dir);
    const issuer = await discoverClusterIssuer(api);
    expect(issuer).toBe(CLUSTER_ISSUER);
    const verifier = createServiceAccountTokenVerifier({ issuer, jwks: clusterJwks(api), now: fixedClock });
    await expect(verifier.verify(await signToken(key, serviceAccountClaims()))).resolves.toMatchObject({ serviceAccount: 'ci-runner' });
    expect(apiServer.requests.map((request) => request.path)).toEqual(['/.well-known/openid-configuration', '/openid/v1/jwks']);
  });

  test('the token file is read per request, so the kubelet rotation is picked up', async () => {
    const api = await inClusterApiServer(env(), dir);
    await writeFile(join(dir, 'token'), 'operator-token-2');
    await expect(api.bearerToken()).resolves.toBe('operator-token-2');
    await expect(discoverClusterIssuer(api)).rejects.toMatchObject({ code: 'GH_ERR_OIDC_DISCOVERY' });
  });

  test('outside a pod it says what is missing', async () => {
    await expect(inClusterApiServer({}, dir)).rejects.toMatchObject({ code: 'GH_ERR_INVALID_ARGUMENT' });
    await expect(inClusterApiServer(env(), join(dir, 'absent'))).rejects.toMatchObject({ code: 'GH_ERR_INVALID_ARGUMENT' });
  });

  test('IPv6 service hosts are bracketed', async () => {
    const api = await inClusterApiServer({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, dir);
    expect(api.server.href).toBe('https://[fd00::1]/');
  });
});

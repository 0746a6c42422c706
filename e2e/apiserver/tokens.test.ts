// TokenRequest, TokenReview, the issuer's OIDC discovery and JWKS, and ServiceAccount bearer tokens —
// checked with @kubernetes/client-node and with the operator's own verifiers (TokenReview and JWKS).
import { AuthenticationV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { decodeJwt } from 'jose';
import { mkdtemp, rm } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../api/logging/logger.js';
import { createTokenReviewVerifier } from '../../operator/identity/token-review.js';
import { createServiceAccountTokenVerifier } from '../../operator/identity/token-verifier.js';
import { startLoopbackApiServer, type LoopbackApiServer } from './loopback-api-server.js';

let server: LoopbackApiServer;
let dir: string;
let core: CoreV1Api;
let auth: AuthenticationV1Api;

async function clientsFor(token?: string): Promise<KubeConfig> {
  const path = join(dir, `kubeconfig-${Math.random().toString(36).slice(2)}`);
  await server.writeKubeconfig(path, { token });
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

beforeAll(async () => {
  server = await startLoopbackApiServer({ logger: silentLogger() });
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-tokens-'));
  const kc = await clientsFor();
  core = kc.makeApiClient(CoreV1Api);
  auth = kc.makeApiClient(AuthenticationV1Api);
  await core.createNamespace({ body: { metadata: { name: 'payments' } } });
  await core.createNamespacedServiceAccount({ namespace: 'payments', body: { metadata: { name: 'ci-runner' } } });
  await core.createNamespacedPod({ namespace: 'payments', body: { metadata: { name: 'orders-0' }, spec: { serviceAccountName: 'ci-runner', containers: [{ name: 'app', image: 'orders:1' }] } } });
});

afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

async function podBoundToken(audiences: string[]): Promise<{ token: string; podUid: string; accountUid: string }> {
  const pod = await core.readNamespacedPod({ namespace: 'payments', name: 'orders-0' });
  const account = await core.readNamespacedServiceAccount({ namespace: 'payments', name: 'ci-runner' });
  const request = await core.createNamespacedServiceAccountToken({ namespace: 'payments', name: 'ci-runner', body: {
    spec: { audiences, expirationSeconds: 900, boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: 'orders-0', uid: pod.metadata!.uid } },
  } });
  return { token: request.status!.token, podUid: pod.metadata!.uid!, accountUid: account.metadata!.uid! };
}

describe('TokenRequest', () => {
  it('issues a pod-bound token with the projected-token claims', async () => {
    const { token, podUid, accountUid } = await podBoundToken(['gatehouse']);
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({
      iss: server.serviceAccountIssuer, aud: ['gatehouse'], sub: 'system:serviceaccount:payments:ci-runner',
      'kubernetes.io': { namespace: 'payments', serviceaccount: { name: 'ci-runner', uid: accountUid }, pod: { name: 'orders-0', uid: podUid } },
    });
    expect(claims.exp! - claims.iat!).toBe(900);
  });

  it('refuses tokens for missing ServiceAccounts and for a pod whose uid does not match', async () => {
    await expect(core.createNamespacedServiceAccountToken({ namespace: 'payments', name: 'nobody', body: { spec: { audiences: ['x'] } } })).rejects.toMatchObject({ code: 404 });
    await expect(core.createNamespacedServiceAccountToken({ namespace: 'payments', name: 'ci-runner', body: {
      spec: { audiences: ['x'], boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: 'orders-0', uid: 'not-the-uid' } },
    } })).rejects.toMatchObject({ code: 409 });
  });
});

describe('TokenReview', () => {
  it('authenticates its own tokens for a matching audience and reports the pod in extra', async () => {
    const { token, podUid } = await podBoundToken(['gatehouse']);
    const review = await auth.createTokenReview({ body: { spec: { token, audiences: ['gatehouse'] } } });
    expect(review.status).toMatchObject({
      authenticated: true, audiences: ['gatehouse'],
      user: { username: 'system:serviceaccount:payments:ci-runner', groups: expect.arrayContaining(['system:serviceaccounts', 'system:serviceaccounts:payments']),
        extra: { 'authentication.kubernetes.io/pod-name': ['orders-0'], 'authentication.kubernetes.io/pod-uid': [podUid] } },
    });
  });

  it('refuses other audiences and forged payloads', async () => {
    const { token } = await podBoundToken(['gatehouse']);
    expect((await auth.createTokenReview({ body: { spec: { token, audiences: ['someone-else'] } } })).status!.authenticated).toBe(false);
    const [header, , signature] = token.split('.');
    const forged = `${header}.${Buffer.from(JSON.stringify({ ...decodeJwt(token), sub: 'system:serviceaccount:kube-system:admin' })).toString('base64url')}.${signature}`;
    expect((await auth.createTokenReview({ body: { spec: { token: forged, audiences: ['gatehouse'] } } })).status).toMatchObject({ authenticated: false });
  });

  it('is what the operator\'s TokenReview verifier trusts', async () => {
    const verifier = createTokenReviewVerifier({ server: server.url, ca: server.caPem, bearerToken: () => server.adminToken });
    const { token, podUid } = await podBoundToken(['gatehouse']);
    await expect(verifier.verify(token)).resolves.toMatchObject({ kind: 'serviceaccount', namespace: 'payments', serviceAccount: 'ci-runner', pod: { name: 'orders-0', uid: podUid } });
    const wrongAudience = await podBoundToken(['vault']);
    await expect(verifier.verify(wrongAudience.token)).rejects.toThrow();
  });
});

/** GET without credentials (the issuer documents are public), trusting the server's CA. */
function getText(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    https.get(url, { ca: server.caPem }, (response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => { text += chunk.toString('utf8'); });
      response.on('end', () => resolve(text));
    }).on('error', reject);
  });
}

describe('OIDC discovery and JWKS', () => {
  it('serves the issuer document and a key set the operator\'s JWKS verifier accepts', async () => {
    const discovery = JSON.parse(await getText(`${server.url}/.well-known/openid-configuration`)) as Record<string, unknown>;
    expect(discovery).toMatchObject({ issuer: server.serviceAccountIssuer, jwks_uri: `${server.url}/openid/v1/jwks`, id_token_signing_alg_values_supported: ['ES256'] });
    const verifier = createServiceAccountTokenVerifier({ issuer: server.serviceAccountIssuer, jwks: { url: `${server.url}/openid/v1/jwks`, ca: server.caPem } });
    const token = await server.issueServiceAccountToken({ namespace: 'payments', serviceAccount: 'ci-runner', audiences: ['gatehouse'], pod: { name: 'orders-0', uid: 'pod-uid-1' } });
    await expect(verifier.verify(token)).resolves.toMatchObject({ namespace: 'payments', serviceAccount: 'ci-runner', pod: { name: 'orders-0', uid: 'pod-uid-1' } });
  });
});

describe('bearer authentication', () => {
  it('accepts the admin token and its own tokens for the API audience, refuses others with 401', async () => {
    const apiToken = await server.issueServiceAccountToken({ namespace: 'payments', serviceAccount: 'ci-runner', audiences: [server.serviceAccountIssuer] });
    const asAccount = (await clientsFor(apiToken)).makeApiClient(CoreV1Api);
    await expect(asAccount.listNamespacedPod({ namespace: 'payments' })).resolves.toMatchObject({ items: [expect.anything()] });
    const gatehouseOnly = await server.issueServiceAccountToken({ namespace: 'payments', serviceAccount: 'ci-runner', audiences: ['gatehouse'] });
    await expect((await clientsFor(gatehouseOnly)).makeApiClient(CoreV1Api).listNamespacedPod({ namespace: 'payments' })).rejects.toMatchObject({ code: 401 });
    await expect((await clientsFor('not-a-token')).makeApiClient(CoreV1Api).listNamespacedPod({ namespace: 'payments' })).rejects.toMatchObject({ code: 401 });
  });
});

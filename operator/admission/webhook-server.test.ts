import { connect, type ClientHttp2Session } from 'node:http2';
import { request } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { Registry } from 'prom-client';
import { createLogger, silentLogger } from '../../api/logging/logger.js';
import { LogCapture } from '../../testing/log-capture.js';
import { eventually } from '../../testing/async-checks.js';
import type { Secret } from '../../api/manifests/config.js';
import { issueCa, issueServingCertificate, type KeyedCertificate } from '../certs/certificate-authority.js';
import { StaticCertificateSource } from '../certs/certificate-source.js';
import { InMemoryTlsCluster } from '../certs/testing/in-memory-tls-cluster.js';
import { WebhookCertManager } from '../certs/webhook-cert-manager.js';
import type { ClusterObjects } from './gatehouse-validation.js';
import type { JsonPatchOperation, JsonValue } from './json-patch.js';
import type { InjectionContext } from './pod-injection.js';
import { applyJsonPatch } from './testing/apply-json-patch.js';
import { appPod, injectionContext, postgresResource } from './testing/injection-fixtures.js';
import { startWebhookServer, type WebhookServer, type WebhookServerOptions } from './webhook-server.js';

const DAY = 86_400_000;

interface Reply {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly fingerprint: string;
}

function post(port: number, ca: string, path: string, body: string, headers: Record<string, string> = {}, method = 'POST'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const outgoing = request(
      { host: '127.0.0.1', port, path, method, ca, agent: false, headers: { 'content-type': 'application/json', ...headers } },
      (incoming) => {
        const fingerprint = (incoming.socket as TLSSocket).getPeerCertificate().fingerprint256;
        const chunks: Buffer[] = [];
        incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
        incoming.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: incoming.statusCode ?? 0, body: text.startsWith('{') ? JSON.parse(text) : { text }, fingerprint });
        });
      },
    );
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

interface H2Reply extends Reply {
  readonly alpn: string | false | null;
}

/** One HTTP/2 session, as the kube-apiserver's Go client opens it (ALPN h2 only). */
function h2Session(port: number, ca: string): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = connect(`https://127.0.0.1:${port}`, { ca });
    session.once('error', reject);
    session.once('connect', () => resolve(session));
  });
}

function h2Post(session: ClientHttp2Session, path: string, body: string, method = 'POST'): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    // endStream false: a GET would otherwise end the stream before the (empty) body is written.
    const stream = session.request({ ':method': method, ':path': path, 'content-type': 'application/json' }, { endStream: false });
    let status = 0;
    const chunks: Buffer[] = [];
    stream.on('response', (headers) => { status = Number(headers[':status']); });
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const socket = session.socket as TLSSocket;
      resolve({ status, body: text.startsWith('{') ? JSON.parse(text) : { text }, fingerprint: socket.getPeerCertificate().fingerprint256, alpn: socket.alpnProtocol });
    });
    stream.on('error', reject);
    stream.end(body);
  });
}

function review(request: Record<string, unknown>): string {
  return JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request });
}

function podReview(pod: unknown, uid = 'uid-pod-1'): string {
  return review({ uid, kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', namespace: 'payments', object: pod });
}

function gatehouseReview(object: { kind: string; metadata: { name: string } }, operation = 'CREATE', uid = 'uid-gh-1'): string {
  return review({
    uid,
    kind: { group: 'gatehouse.dev', version: 'v1alpha1', kind: object.kind },
    operation,
    namespace: 'payments',
    name: object.metadata.name,
    ...(operation === 'DELETE' ? { oldObject: object } : { object }),
  });
}

interface ReviewResponse {
  uid: string;
  allowed: boolean;
  patchType?: string;
  patch?: string;
  warnings?: string[];
  status?: { code: number; message: string };
}

function responseOf(reply: Reply): ReviewResponse {
  expect(reply.status).toBe(200);
  expect(reply.body).toMatchObject({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' });
  return reply.body.response as ReviewResponse;
}

function decodePatch(response: ReviewResponse): JsonPatchOperation[] {
  return JSON.parse(Buffer.from(response.patch!, 'base64').toString('utf8')) as JsonPatchOperation[];
}

const policy = {
  apiVersion: 'gatehouse.dev/v1alpha1',
  kind: 'AccessPolicy',
  metadata: { name: 'ci-orders', namespace: 'payments' },
  spec: { subjects: [{ identity: 'ci-runner' }], resources: ['orders-db'], rules: [{ name: 'read', effect: 'allow', operations: ['read'] }] },
};
const identity = {
  apiVersion: 'gatehouse.dev/v1alpha1',
  kind: 'NonHumanIdentity',
  metadata: { name: 'ci-runner', namespace: 'payments' },
  spec: { serviceAccountName: 'ci-runner' },
};
const adminSecret: Secret = {
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name: 'orders-db-admin', namespace: 'payments' },
  data: { username: 'admin', password: 'x' },
};

/** A postgres resource using the Secret the namespace holds. */
function resourceWithAdmin(name: string, port: number): ReturnType<typeof postgresResource> {
  const resource = postgresResource(name, port);
  resource.spec.credentials = { strategy: 'static', secretRef: { name: 'orders-db-admin' } };
  return resource;
}

function clusterObjects(): ClusterObjects {
  return {
    identities: [structuredClone(identity) as never],
    resources: [postgresResource('orders-db', 15432)],
    policies: [structuredClone(policy) as never],
    secrets: [adminSecret],
  };
}


/** A certificate manager whose every reconcile after the first rotates the serving certificate. */
async function rotatingCertManager(): Promise<WebhookCertManager> {
  // A rotation window longer than the validity.
  const lifetimes = { servingValidityMs: DAY, servingRotateBeforeMs: 2 * DAY };
  const manager = new WebhookCertManager({
    cluster: new InMemoryTlsCluster(), namespace: 'gatehouse-system', serviceName: 'gatehouse-webhook', lifetimes, logger: silentLogger(),
  });
  await manager.reconcile();
  return manager;
}

describe('webhook server', () => {
  let ca: KeyedCertificate;
  let tls: StaticCertificateSource;
  let server: WebhookServer | undefined;
  let registry: Registry;

  beforeAll(async () => {
    const now = new Date();
    ca = await issueCa({ commonName: 'test-ca', now, validityMs: DAY });
    const serving = await issueServingCertificate({ ca, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], now, validityMs: DAY });
    tls = new StaticCertificateSource({ cert: serving.certPem, key: serving.keyPem });
  });

  afterEach(async () => {
    await server?.close(100);
    server = undefined;
  });

  async function start(overrides: Partial<WebhookServerOptions> = {}): Promise<number> {
    registry = new Registry();
    server = await startWebhookServer({
      host: '127.0.0.1',
      port: 0,
      tls,
      injection: () => injectionContext(),
      clusterView: () => clusterObjects(),
      logger: silentLogger(),
      registry,
      ...overrides,
    });
    return server.port;
  }

  describe('/mutate-pods', () => {
    it('answers with the uid, allowed and a base64 JSON patch that injects the sidecar', async () => {
      const port = await start();
      const pod = appPod();
      const response = responseOf(await post(port, ca.certPem, '/mutate-pods', podReview(pod, 'abc-123')));
      expect(response).toMatchObject({ uid: 'abc-123', allowed: true, patchType: 'JSONPatch' });
      const patched = applyJsonPatch(pod as JsonValue, decodePatch(response)) as { spec: { initContainers: { name: string }[] } };
      expect(patched.spec.initContainers[0]!.name).toBe('gatehouse-sidecar');
      expect(await registry.metrics()).toMatch(/gatehouse_admission_requests_total\{webhook="mutate-pods",operation="CREATE",outcome="patched"\} 1/);
      expect(await registry.metrics()).toMatch(/gatehouse_admission_request_duration_seconds_count\{webhook="mutate-pods"\} 1/);
    });

    it('admits a pod that is not opted in without a patch', async () => {
      const port = await start({ injection: () => injectionContext({ namespaceLabels: {} }) });
      const response = responseOf(await post(port, ca.certPem, '/mutate-pods', podReview(appPod())));
      expect(response).toEqual({ uid: 'uid-pod-1', allowed: true });
    });

    it('hands the namespace of the request to the injection lookup', async () => {
      const seen: string[] = [];
      const port = await start({ injection: (_pod, namespace) => (seen.push(namespace), injectionContext()) });
      await post(port, ca.certPem, '/mutate-pods', podReview(appPod()));
      expect(seen).toEqual(['payments']);
    });

    it('refuses a pod with an invalid override annotation, with the GH_ERR message', async () => {
      const port = await start();
      const pod = appPod({ annotations: { 'gatehouse.dev/sidecar-memory': 'plenty' } });
      const response = responseOf(await post(port, ca.certPem, '/mutate-pods', podReview(pod)));
      expect(response.allowed).toBe(false);
      expect(response.status!.code).toBe(403);
      expect(response.status!.message).toMatch(/gatehouse.dev\/sidecar-memory.*\[GH_ERR_ADMISSION_ANNOTATION\]/);
    });

    it('fails closed by default when the operator cannot compute the injection context', async () => {
      const port = await start({ injection: () => undefined });
      const response = responseOf(await post(port, ca.certPem, '/mutate-pods', podReview(appPod())));
      expect(response.allowed).toBe(false);
      expect(response.status).toMatchObject({ code: 500 });
      expect(response.status!.message).toMatch(/could not decide on Pod ci-job-\*.*fails closed/);
      expect(await registry.metrics()).toMatch(/outcome="error_denied"\} 1/);
    });

    it('fails open when so configured: admitted unchanged, with a warning', async () => {
      const failing = (): InjectionContext => {
        throw new Error('cache exploded');
      };
      const port = await start({ injection: failing, failureModes: { mutation: 'fail-open' } });
      const response = responseOf(await post(port, ca.certPem, '/mutate-pods', podReview(appPod())));
      expect(response.allowed).toBe(true);
      expect(response.patch).toBeUndefined();
      expect(response.warnings![0]).toMatch(/admitted without a decision \(cache exploded\)/);
      expect(await registry.metrics()).toMatch(/outcome="error_allowed"\} 1/);
    });

    it('applies the failure mode when no decision comes within the timeout', async () => {
      const port = await start({ injection: () => new Promise<never>(() => undefined), decisionTimeoutMs: 100 });
      const response = responseOf(await post(port, ca.certPem, '/mutate-pods', podReview(appPod())));
      expect(response.allowed).toBe(false);
      expect(response.status!.message).toMatch(/no decision within 100 ms/);
    });

    it('admits operations other than Pod CREATE untouched', async () => {
      const port = await start();
      const update = review({ uid: 'u', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'UPDATE', namespace: 'payments', object: appPod(), oldObject: appPod() });
      expect(responseOf(await post(port, ca.certPem, '/mutate-pods', update))).toEqual({ uid: 'u', allowed: true });
    });
  });

  describe('malformed requests', () => {
    it.each([
      ['not JSON', '{"apiVersion":', /the body is not JSON/],
      ['an old API version', JSON.stringify({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: { uid: 'x' } }), /admissionReviewVersions: \[v1\]/],
      ['no uid', review({ kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', object: {} }), /request.uid is missing/],
      ['no object on CREATE', review({ uid: 'x', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE' }), /request.object is missing for CREATE/],
      ['an unknown operation', review({ uid: 'x', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'PATCH', object: {} }), /operation "PATCH"/],
    ])('answers 400 with a clear message for %s', async (_what, body, message) => {
      const port = await start();
      const reply = await post(port, ca.certPem, '/mutate-pods', body);
      expect(reply.status).toBe(400);
      expect(reply.body).toMatchObject({ code: 'GH_ERR_ADMISSION_BAD_REQUEST' });
      expect(String(reply.body.message)).toMatch(message);
    });

    it('refuses a body over the limit with 413', async () => {
      const port = await start({ maxBodyBytes: 1024 });
      const reply = await post(port, ca.certPem, '/mutate-pods', podReview({ ...appPod(), padding: 'x'.repeat(4096) }));
      expect(reply.status).toBe(413);
      expect(reply.body).toMatchObject({ code: 'GH_ERR_ADMISSION_TOO_LARGE' });
    });

    it('refuses another content type (415), another method (405) and another path (404)', async () => {
      const port = await start();
      expect((await post(port, ca.certPem, '/mutate-pods', podReview(appPod()), { 'content-type': 'text/plain' })).status).toBe(415);
      expect((await post(port, ca.certPem, '/mutate-pods', '', {}, 'PUT')).status).toBe(405);
      expect((await post(port, ca.certPem, '/mutate-secrets', podReview(appPod()))).status).toBe(404);
      expect(await registry.metrics()).toMatch(/outcome="bad_request"\} 2/);
    });

    it('answers /healthz and /readyz', async () => {
      const port = await start();
      expect((await post(port, ca.certPem, '/healthz', '', {}, 'GET')).status).toBe(200);
      expect((await post(port, ca.certPem, '/readyz', '', {}, 'GET')).status).toBe(200);
    });
  });

  describe('/validate-gatehouse', () => {
    it('admits a valid object', async () => {
      const port = await start();
      const response = responseOf(await post(port, ca.certPem, '/validate-gatehouse', gatehouseReview(resourceWithAdmin('reports-db', 15433) as never)));
      expect(response).toEqual({ uid: 'uid-gh-1', allowed: true });
    });

    it('denies a schema error with the field path and message of gatehouse validate', async () => {
      const port = await start();
      const bad = { ...structuredClone(policy), metadata: { name: 'typo', namespace: 'payments' } };
      (bad.spec.rules[0] as Record<string, unknown>).effect = 'permit';
      const response = responseOf(await post(port, ca.certPem, '/validate-gatehouse', gatehouseReview(bad)));
      expect(response.allowed).toBe(false);
      expect(response.status!.code).toBe(403);
      expect(response.status!.message).toMatch(/AccessPolicy payments\/typo has 1 problem.*spec.rules\[0\].effect: must be one of allow, require-approval, deny \[GH_ERR_MANIFEST_SCHEMA\]/);
    });

    it('denies a semantic error against what the cluster holds: a sidecar port already taken', async () => {
      const port = await start();
      const response = responseOf(await post(port, ca.certPem, '/validate-gatehouse', gatehouseReview(postgresResource('reports-db', 15432) as never)));
      expect(response.allowed).toBe(false);
      expect(response.status!.message).toMatch(/sidecar port 15432 is used by both orders-db and reports-db.*\[GH_ERR_PORT_CONFLICT\]/);
    });

    it('denies a reference to a resource the namespace does not hold', async () => {
      const port = await start();
      const dangling = { ...structuredClone(policy), metadata: { name: 'dangling', namespace: 'payments' }, spec: { ...policy.spec, resources: ['nope-db'] } };
      const response = responseOf(await post(port, ca.certPem, '/validate-gatehouse', gatehouseReview(dangling)));
      expect(response.status!.message).toMatch(/ProtectedResource nope-db does not exist in namespace payments.*\[GH_ERR_REF_UNKNOWN_RESOURCE\]/);
    });

    it('returns warnings as AdmissionReview warnings on an admitted object', async () => {
      const port = await start();
      const resource = resourceWithAdmin('api-db', 15434) as unknown as { spec: Record<string, unknown> };
      resource.spec.protocol = 'tcp';
      const response = responseOf(await post(port, ca.certPem, '/validate-gatehouse', gatehouseReview(resource as never)));
      expect(response.allowed).toBe(true);
      expect(response.warnings).toEqual([expect.stringMatching(/^spec.database: database has no effect on a tcp resource.*\[GH_ERR_FIELD_IGNORED\]$/)]);
    });

    it('admits an update that fixes nothing else but keeps the object valid (its old version is replaced, not doubled)', async () => {
      const port = await start();
      const updated = postgresResource('orders-db', 15432, 'orders-db.payments.svc:6432');
      const response = responseOf(await post(port, ca.certPem, '/validate-gatehouse', gatehouseReview(updated as never, 'UPDATE')));
      expect(response).toEqual({ uid: 'uid-gh-1', allowed: true });
    });

    it('admits a delete, warning about the policies it leaves dangling', async () => {
      const port = await start();
      const response = responseOf(await post(port, ca.certPem, '/validate-gatehouse', gatehouseReview(postgresResource('orders-db', 15432) as never, 'DELETE')));
      expect(response.allowed).toBe(true);
      expect(response.warnings).toEqual([expect.stringMatching(/^AccessPolicy payments\/ci-orders spec.resources\[0\]: ProtectedResource orders-db does not exist/)]);
    });

    it('judges an object created with generateName as its own, not as someone else\'s', async () => {
      const port = await start();
      const bad = { ...structuredClone(policy), metadata: { generateName: 'ci-', namespace: 'payments' } };
      (bad.spec.rules[0] as Record<string, unknown>).effect = 'permit';
      const body = review({ uid: 'g', kind: { group: 'gatehouse.dev', version: 'v1alpha1', kind: 'AccessPolicy' }, operation: 'CREATE', namespace: 'payments', object: bad });
      const response = responseOf(await post(port, ca.certPem, '/validate-gatehouse', body));
      expect(response.allowed).toBe(false);
      expect(response.status!.message).toMatch(/AccessPolicy payments\/ci-generated.*\[GH_ERR_MANIFEST_SCHEMA\]/);
    });

    it('denies an object with neither name nor generateName', async () => {
      const port = await start();
      const nameless = { ...structuredClone(policy), metadata: { namespace: 'payments' } };
      const body = review({ uid: 'n', kind: { group: 'gatehouse.dev', version: 'v1alpha1', kind: 'AccessPolicy' }, operation: 'CREATE', namespace: 'payments', object: nameless });
      const response = responseOf(await post(port, ca.certPem, '/validate-gatehouse', body));
      expect(response.allowed).toBe(false);
      expect(response.status!.message).toMatch(/metadata.name: required field is missing/);
    });

    it('fails closed when the cluster view cannot be read', async () => {
      const port = await start({ clusterView: () => Promise.reject(new Error('informer not synced')) });
      const response = responseOf(await post(port, ca.certPem, '/validate-gatehouse', gatehouseReview(postgresResource('x-db', 15435) as never)));
      expect(response).toMatchObject({ allowed: false, status: { code: 500 } });
      expect(response.status!.message).toMatch(/informer not synced/);
    });
  });

  describe('certificates', () => {
    it('serves a rotated certificate to new connections without a restart', async () => {
      const manager = await rotatingCertManager();
      const port = await start({ tls: manager });
      const bundle = manager.caBundle();
      const first = await post(port, bundle, '/healthz', '', {}, 'GET');
      expect((await manager.reconcile()).action).toBe('serving-rotated');
      const second = await post(port, bundle, '/healthz', '', {}, 'GET');
      expect(second.status).toBe(200);
      expect(second.fingerprint).not.toBe(first.fingerprint);
      const { X509Certificate } = await import('node:crypto');
      expect(second.fingerprint).toBe(new X509Certificate(manager.current().cert).fingerprint256);
      expect(await registry.metrics()).toMatch(/gatehouse_admission_certificate_reloads_total 1/);
    });

    it('is refused by a client that does not trust its CA', async () => {
      const port = await start();
      const other = await issueCa({ commonName: 'other', now: new Date(), validityMs: DAY });
      await expect(post(port, other.certPem, '/healthz', '', {}, 'GET')).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
    });
  });

  describe('HTTP/2 and HTTP/1.1', () => {
    it('answers an h2 client and an HTTP/1.1 client on the same port with the same review', async () => {
      const port = await start();
      const session = await h2Session(port, ca.certPem);
      try {
        const overH2 = await h2Post(session, '/mutate-pods', podReview(appPod(), 'uid-h2'));
        const overHttp1 = await post(port, ca.certPem, '/mutate-pods', podReview(appPod(), 'uid-h1'));
        expect(overH2.alpn).toBe('h2');
        const [h2Response, http1Response] = [responseOf(overH2), responseOf(overHttp1)];
        expect(h2Response).toMatchObject({ uid: 'uid-h2', allowed: true, patchType: 'JSONPatch' });
        expect(http1Response).toMatchObject({ uid: 'uid-h1', allowed: true, patchType: 'JSONPatch' });
        expect(decodePatch(h2Response)).toEqual(decodePatch(http1Response));
        const patched = applyJsonPatch(appPod() as unknown as JsonValue, decodePatch(h2Response)) as { spec: { initContainers?: Array<{ name: string }> } };
        expect(patched.spec.initContainers?.map((container) => container.name)).toContain('gatehouse-sidecar');
      } finally {
        session.close();
      }
    });

    it('multiplexes concurrent reviews over one h2 session, each answered with its own uid', async () => {
      const port = await start();
      const session = await h2Session(port, ca.certPem);
      let connections = 0;
      try {
        const uids = Array.from({ length: 50 }, (_, index) => `uid-stream-${index}`);
        const replies = await Promise.all(uids.map((uid) => h2Post(session, '/mutate-pods', podReview(appPod(), uid))));
        expect(replies.map((reply) => responseOf(reply).uid)).toEqual(uids);
        expect(replies.every((reply) => responseOf(reply).allowed && responseOf(reply).patch)).toBe(true);
        connections = new Set(replies.map((reply) => reply.fingerprint)).size;
      } finally {
        session.close();
      }
      expect(connections).toBe(1);
      expect(await registry.metrics()).toMatch(/gatehouse_admission_requests_total\{[^}]*webhook="mutate-pods"[^}]*outcome="patched"[^}]*\} 50/);
    });

    it('keeps the HTTP statuses over h2: 404, 405, 415, 413 and 400', async () => {
      const port = await start({ maxBodyBytes: 1024 });
      const session = await h2Session(port, ca.certPem);
      try {
        expect((await h2Post(session, '/nowhere', podReview(appPod()))).status).toBe(404);
        expect((await h2Post(session, '/mutate-pods', '', 'GET')).status).toBe(405);
        const tooLarge = await h2Post(session, '/mutate-pods', podReview({ ...appPod(), padding: 'x'.repeat(4096) }));
        expect(tooLarge).toMatchObject({ status: 413, body: { code: 'GH_ERR_ADMISSION_TOO_LARGE' } });
        const notJson = await h2Post(session, '/mutate-pods', 'not json');
        expect(notJson).toMatchObject({ status: 400, body: { code: 'GH_ERR_ADMISSION_BAD_REQUEST' } });
        expect((await h2Post(session, '/healthz', '', 'GET')).status).toBe(200);
      } finally {
        session.close();
      }
    });

    it('answers 415 over h2 for another content type', async () => {
      const port = await start();
      const session = await h2Session(port, ca.certPem);
      try {
        const status = await new Promise<number>((resolve, reject) => {
          const stream = session.request({ ':method': 'POST', ':path': '/mutate-pods', 'content-type': 'text/plain' });
          stream.on('response', (headers) => resolve(Number(headers[':status'])));
          stream.on('error', reject);
          stream.end(podReview(appPod()));
        });
        expect(status).toBe(415);
      } finally {
        session.close();
      }
    });

    it('applies the request timeout to an h2 stream whose body never ends', async () => {
      const port = await start({ requestTimeoutMs: 200 });
      const session = await h2Session(port, ca.certPem);
      try {
        const status = await new Promise<number>((resolve, reject) => {
          const stream = session.request({ ':method': 'POST', ':path': '/mutate-pods', 'content-type': 'application/json' });
          stream.on('response', (headers) => resolve(Number(headers[':status'])));
          stream.on('error', reject);
          stream.write('{"apiVersion":'); // and never end
        });
        expect(status).toBe(408);
      } finally {
        session.destroy();
      }
    });

    it('serves a rotated certificate to new h2 sessions; an open session keeps its own', async () => {
      const manager = await rotatingCertManager();
      const port = await start({ tls: manager });
      const bundle = manager.caBundle();
      const before = await h2Session(port, bundle);
      try {
        const first = await h2Post(before, '/healthz', '', 'GET');
        expect((await manager.reconcile()).action).toBe('serving-rotated');
        const after = await h2Session(port, bundle);
        try {
          const second = await h2Post(after, '/mutate-pods', podReview(appPod()));
          expect(responseOf(second).allowed).toBe(true);
          const { X509Certificate } = await import('node:crypto');
          expect(second.fingerprint).toBe(new X509Certificate(manager.current().cert).fingerprint256);
          expect(second.fingerprint).not.toBe(first.fingerprint);
        } finally {
          after.close();
        }
        const stillOld = await h2Post(before, '/healthz', '', 'GET');
        expect(stillOld).toMatchObject({ status: 200, fingerprint: first.fingerprint });
      } finally {
        before.close();
      }
    });

    it('closes an idle h2 session with GOAWAY, and tells HTTP/1.1 keep-alive clients its 5 s idle limit', async () => {
      const port = await start({ idleTimeoutMs: 200 });
      const session = await h2Session(port, ca.certPem);
      expect((await h2Post(session, '/healthz', '', 'GET')).status).toBe(200);
      const started = Date.now();
      await new Promise<void>((resolve) => session.once('close', () => resolve()));
      expect(Date.now() - started).toBeGreaterThanOrEqual(150);
      const keepAlive = await new Promise<string>((resolve, reject) => {
        const outgoing = request({ host: '127.0.0.1', port, path: '/healthz', ca: ca.certPem, agent: false, headers: { connection: 'keep-alive' } }, (incoming) => {
          incoming.resume();
          resolve(String(incoming.headers['keep-alive']));
        });
        outgoing.on('error', reject);
        outgoing.end();
      });
      expect(keepAlive).toBe('timeout=5');
    });

    it('survives a client that resets its stream before the answer, and answers the next one', async () => {
      let release: () => void = () => undefined;
      let calls = 0;
      const slowFirst = () => (++calls === 1
        ? new Promise<InjectionContext>((resolve) => { release = () => resolve(injectionContext()); })
        : injectionContext());
      const log = new LogCapture();
      const port = await start({ injection: slowFirst, logger: createLogger({ level: 'debug', destination: log }) });
      const session = await h2Session(port, ca.certPem);
      try {
        const stream = session.request({ ':method': 'POST', ':path': '/mutate-pods', 'content-type': 'application/json' });
        stream.on('error', () => undefined);
        stream.end(podReview(appPod(), 'uid-gone'));
        await eventually('the review reached the injection lookup', () => calls === 1);
        const closed = new Promise((resolve) => stream.once('close', resolve));
        stream.close(8); // NGHTTP2_CANCEL, as Go's client does when its context is cancelled
        await closed;
        // Time for the server to read the RST_STREAM: the decision then finds its stream gone.
        await new Promise((resolve) => setTimeout(resolve, 100));
        release();
        const reply = await h2Post(session, '/mutate-pods', podReview(appPod(), 'uid-next'));
        expect(responseOf(reply).uid).toBe('uid-next');
        expect(responseOf(reply).allowed).toBe(true);
      } finally {
        session.close();
      }
      // The abandoned review was still decided (and counted); only its answer had nowhere to go.
      await eventually('both reviews counted', async () => /gatehouse_admission_requests_total\{[^}]*outcome="patched"[^}]*\} 2/.test(await registry.metrics()));
      expect(log.text).toContain('uid-gone');
      expect(log.text).not.toMatch(/"level":(50|60)/);
    });

    it('drains an h2 stream in flight on close and refuses new sessions', async () => {
      let release: () => void = () => undefined;
      const slow = () => new Promise<InjectionContext>((resolve) => {
        release = () => resolve(injectionContext());
      });
      const port = await start({ injection: slow });
      const session = await h2Session(port, ca.certPem);
      const pending = h2Post(session, '/mutate-pods', podReview(appPod()));
      await new Promise((resolve) => setTimeout(resolve, 100));
      const closing = server!.close(2_000);
      await expect(h2Session(port, ca.certPem)).rejects.toThrow(/ECONNREFUSED/);
      release();
      const reply = await pending;
      await closing;
      server = undefined;
      session.destroy();
      expect(responseOf(reply).allowed).toBe(true);
    });
  });

  it('drains a request in flight on close', async () => {
    let release: () => void = () => undefined;
    const slow = () => new Promise<InjectionContext>((resolve) => {
      release = () => resolve(injectionContext());
    });
    const port = await start({ injection: slow });
    const pending = post(port, ca.certPem, '/mutate-pods', podReview(appPod()));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const closing = server!.close(2_000);
    release();
    const reply = await pending;
    await closing;
    server = undefined;
    expect(responseOf(reply).allowed).toBe(true);
  });
});

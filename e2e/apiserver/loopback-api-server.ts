// A Kubernetes API server for tests, on 127.0.0.1 over HTTPS with its own CA, that speaks enough of
// the real wire protocol for kubectl, helm and @kubernetes/client-node to run against it unchanged:
// discovery, CRUD with real metadata semantics, list/watch with resourceVersions and 410, patches
// including server-side apply, status subresources, CRD schema validation, admission webhooks,
// TokenRequest/TokenReview and the issuer's JWKS. See README.md for what it deliberately leaves out.
import { randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { Counter, Registry } from 'prom-client';
import { parseAllDocuments, stringify } from 'yaml';
import { createLogger, type Logger } from '../../api/logging/logger.js';
import { AdmissionChain, type ServiceResolver } from './admission.js';
import { ApiRouter } from './api-router.js';
import { ApiStatusError } from './api-status.js';
import { withNamespaceNameLabel } from './builtin-defaults.js';
import { establishedStatus, resourceTypeFromCrd } from './custom-resource-types.js';
import { Faults, type FaultInjector } from './fault-injector.js';
import { ADMIN_USER, IdentityApi } from './identity-api.js';
import { isJsonObject, type KubeObject } from './objects.js';
import { ObjectStore } from './object-store.js';
import { ResourceApi } from './resource-api.js';
import { ResourceTypeRegistry, typeKey, type ResourceType } from './resource-types.js';
import { ServiceAccountTokenIssuer } from './service-account-tokens.js';
import { createServingCertificate } from './tls.js';
import { WatchHub } from './watch-hub.js';

export type { FaultInjector, FaultRequest, FaultStatus } from './fault-injector.js';
export type { ServiceResolver } from './admission.js';

export interface LoopbackApiServerOptions {
  /** Register every CustomResourceDefinition YAML in this folder at start (e.g. 'crds'). */
  crdDir?: string;
  /** 0 = a free port (default). */
  port?: number;
  logger?: Logger;
  /** Maps a webhook clientConfig.service to a base URL such as https://127.0.0.1:PORT. */
  resolveService?: ServiceResolver;
  /** How many change events watches can replay from; older resourceVersions get 410. Default 1000. */
  watchWindow?: number;
  /** How often watches that allow bookmarks get one. Default 1000 ms (the real server: about a minute). */
  bookmarkIntervalMs?: number;
  /** `iss` of ServiceAccount tokens. Default https://kubernetes.default.svc. */
  serviceAccountIssuer?: string;
}

export interface LoopbackApiServer {
  /** https://127.0.0.1:PORT */
  readonly url: string;
  /** CA of its serving certificate. */
  readonly caPem: string;
  /** Bearer token with full access. */
  readonly adminToken: string;
  writeKubeconfig(path: string, opts?: { token?: string; namespace?: string }): Promise<void>;
  /** `iss` of the tokens it issues. */
  readonly serviceAccountIssuer: string;
  /** Signs a projected-ServiceAccount-token-shaped ES256 JWT (the ServiceAccount need not exist). */
  issueServiceAccountToken(req: {
    namespace: string;
    serviceAccount: string;
    audiences: string[];
    expirationSeconds?: number;
    pod?: { name: string; uid: string };
  }): Promise<string>;
  readonly faults: FaultInjector;
  close(): Promise<void>;
}

const DEFAULT_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];

function isCrdType(type: ResourceType): boolean {
  return type.group === 'apiextensions.k8s.io' && type.plural === 'customresourcedefinitions';
}

/** Serves CRDs' types as they are created, changed and deleted. */
function crdLifecycle(registry: ResourceTypeRegistry, store: ObjectStore) {
  return {
    beforeWrite(type: ResourceType, object: KubeObject): KubeObject {
      if (!isCrdType(type)) return object;
      const served = resourceTypeFromCrd(object);
      const existing = registry.all().find((candidate) => typeKey(candidate.group, candidate.plural) === typeKey(served.group, served.plural));
      if (existing !== undefined && existing.crdName === undefined) {
        throw new ApiStatusError(422, 'Invalid', `CustomResourceDefinition "${object.metadata.name}" is invalid: ${served.plural}.${served.group} is a built-in resource`);
      }
      return { ...object, status: establishedStatus(object) };
    },
    afterWrite(type: ResourceType, object: KubeObject, deleted: boolean): void {
      if (!isCrdType(type)) return;
      const served = resourceTypeFromCrd(object);
      if (deleted) {
        store.dropType(served);
        registry.remove(served.group, served.plural);
      } else registry.add(served);
    },
  };
}

async function loadCrds(dir: string, resources: ResourceApi, registry: ResourceTypeRegistry): Promise<void> {
  const crdType = registry.find('apiextensions.k8s.io', 'v1', 'customresourcedefinitions')!;
  const files = (await readdir(dir)).filter((name) => /\.ya?ml$/.test(name)).sort();
  for (const file of files) {
    for (const document of parseAllDocuments(await readFile(join(dir, file), 'utf8'))) {
      const crd: unknown = document.toJS();
      if (!isJsonObject(crd) || crd.kind !== 'CustomResourceDefinition') continue;
      const target = { type: crdType, version: 'v1', watchPath: false };
      await resources.create({ target, query: new URLSearchParams(), user: ADMIN_USER, userAgentManager: 'loopback-api-server' }, crd);
    }
  }
}

export async function startLoopbackApiServer(options: LoopbackApiServerOptions = {}): Promise<LoopbackApiServer> {
  const logger = options.logger ?? createLogger({ name: 'loopback-api-server', level: 'warn' });
  const issuerUrl = options.serviceAccountIssuer ?? 'https://kubernetes.default.svc';
  const [certificate, issuer] = await Promise.all([createServingCertificate(), ServiceAccountTokenIssuer.create(issuerUrl)]);
  const adminToken = randomBytes(32).toString('base64url');
  const registry = new ResourceTypeRegistry();
  const hub = new WatchHub(options.watchWindow ?? 1000);
  const store = new ObjectStore(hub);
  const webhookType = (plural: string): ResourceType => registry.find('admissionregistration.k8s.io', 'v1', plural)!;
  const admission = new AdmissionChain({
    configurations: (kind) => store.list(webhookType(`${kind}webhookconfigurations`)),
    namespaceLabels: (namespace) => { const found = store.namespace(namespace); return found === undefined ? undefined : found.metadata.labels ?? {}; },
  }, options.resolveService, logger);
  const resources = new ResourceApi(store, admission, crdLifecycle(registry, store));
  const identity = new IdentityApi(store, registry, issuer, adminToken);
  const faults = new Faults(hub, () => store.currentResourceVersion);
  const metrics = new Registry();
  const requests = new Counter({ name: 'apiserver_request_total', help: 'Requests by verb and response code.', labelNames: ['verb', 'code'] as const, registers: [metrics] });

  const namespaces = registry.find('', 'v1', 'namespaces')!;
  for (const name of DEFAULT_NAMESPACES) store.create(namespaces, withNamespaceNameLabel({ apiVersion: 'v1', kind: 'Namespace', metadata: { name }, status: { phase: 'Active' } }));
  if (options.crdDir !== undefined) await loadCrds(options.crdDir, resources, registry);

  let url = '';
  const router = new ApiRouter({
    registry, store, hub, resources, identity, issuer, faults, logger, requests,
    metricsText: () => metrics.metrics(), publicUrl: () => url, bookmarkIntervalMs: options.bookmarkIntervalMs ?? 1000,
  });
  const server = https.createServer({ cert: certificate.certPem, key: certificate.keyPem }, (request, response) => {
    void router.handle(request, response);
  });
  // Tracked so close() can end keep-alive and watch connections, which server.close() alone waits for.
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  logger.info({ url }, 'loopback API server listening');

  return {
    url,
    caPem: certificate.caPem,
    adminToken,
    serviceAccountIssuer: issuerUrl,
    faults,
    async writeKubeconfig(path, opts = {}) {
      const kubeconfig = {
        apiVersion: 'v1', kind: 'Config', 'current-context': 'loopback',
        clusters: [{ name: 'loopback', cluster: { server: url, 'certificate-authority-data': Buffer.from(certificate.caPem).toString('base64') } }],
        users: [{ name: 'loopback-user', user: { token: opts.token ?? adminToken } }],
        contexts: [{ name: 'loopback', context: { cluster: 'loopback', user: 'loopback-user', namespace: opts.namespace ?? 'default' } }],
        preferences: {},
      };
      await writeFile(path, stringify(kubeconfig), { mode: 0o600 });
    },
    async issueServiceAccountToken(req) {
      const { token } = await issuer.issue({
        namespace: req.namespace, serviceAccount: req.serviceAccount, serviceAccountUid: identity.serviceAccountUid(req.namespace, req.serviceAccount),
        audiences: req.audiences, expirationSeconds: req.expirationSeconds, pod: req.pod,
      });
      return token;
    },
    async close() {
      hub.dropAll();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
    },
  };
}

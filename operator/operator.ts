// `gatehouse operator`: the long-running process in the cluster. Every replica watches the four
// kinds, Pods, ServiceAccounts and Secrets, serves the policy discovery service (sidecars connect
// here, proven by their projected ServiceAccount tokens) and /metrics /healthz /readyz; the replica
// holding the Lease also runs the reconcilers that write status and finalizers. Every replica also
// turns held statements into AccessRequests (RequestApproval) and admits their decisions (webhook).
// Resolves once the informers synced and every server listens; close() drains in reverse order.
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { hostname } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { KubeConfig } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { GatehouseError } from '../api/errors.js';
import type { Logger } from '../api/logging/logger.js';
import { loadDiscoveryProto } from '../api/proto/discovery-proto.js';
import { startAdminServer, type AdminServer } from '../sidecar/admin/admin-server.js';
import { DEFAULT_WARMUP_REVIEWS, runAdmissionWarmup } from './admission/admission-warmup.js';
import type { ClusterObjects } from './admission/gatehouse-validation.js';
import { IdentityAccessCache, type IdentityAccess } from './admission/identity-access-cache.js';
import { INJECTED_LABEL, injectionContextOf, type InjectionContext, type PodLike } from './admission/pod-injection.js';
import { startWebhookServer, type WebhookServer } from './admission/webhook-server.js';
import { createClusterApprovals, type ClusterApprovals } from './approvals/cluster-approvals.js';
import type { NotificationTargets } from './approvals/approval-notifier.js';
import { StaticCertificateSource, type CertificateSource } from './certs/certificate-source.js';
import { FileCertificateSource } from './certs/file-certificate-source.js';
import { webhookTlsClusterFrom } from './certs/kube-client-adapter.js';
import { WebhookCertManager } from './certs/webhook-cert-manager.js';
import { ClusterControlPlane } from './cluster-control-plane/cluster-control-plane.js';
import { clusterCredentialIssuers, secretLookupFrom } from './cluster-control-plane/cluster-issuers.js';
import { carriesSidecar, identityOfPod, serviceAccountOf } from './cluster-control-plane/sidecar-pods.js';
import { createControlPlaneMetrics } from './control-plane/control-plane-metrics.js';
import { nodeAuthenticatorFrom } from './control-plane/identity-authenticator.js';
import { SnapshotCache } from './control-plane/snapshot-cache.js';
import { startDiscoveryServer, type DiscoveryServer, type ExtraDiscoveryHandlers, type NodeAuthenticator } from './control-plane/stream-server.js';
import { createAuthenticator } from './identity/identity-resolver.js';
import { parseJson, sendRequest } from './identity/https-client.js';
import { discoverClusterIssuer, inClusterApiServer, clusterJwks, type ApiServerAccess } from './identity/in-cluster.js';
import { createTokenReviewVerifier, TOKEN_REVIEW_PATH } from './identity/token-review.js';
import { createServiceAccountTokenVerifier } from './identity/token-verifier.js';
import type { ServiceAccountVerifier } from './identity/workload-identity.js';
import { createKubeClient, loadKubeConfig, RESOURCE_TYPES, type KubeClient, type KubeObject, type ResourceType } from './kube/kube-client.js';
import { Informer } from './kube/informer.js';
import { createKubeMetrics, type KubeMetrics } from './kube/kube-metrics.js';
import { LeaderElector } from './kube/leader-election.js';
import { ClusterValidation, configFromStores } from './reconcile/cluster-config.js';
import { cachedPod, cachedSecret, decodeSecret, type ClusterStores, type KubePod, type KubeSecret, type ObjectStore } from './reconcile/cluster-objects.js';
import { changedObject, dependentsOf, type WatchedKind } from './reconcile/dependents.js';
import { IdentityReconciler } from './reconcile/identity-reconciler.js';
import { kubeWriter } from './reconcile/kube-writer.js';
import { PolicyReconciler } from './reconcile/policy-reconciler.js';
import { ReconcileTerm, type ReconcilerSet } from './reconcile/reconcile-term.js';
import { ResourceReconciler } from './reconcile/resource-reconciler.js';
import { selectForIdentity } from './local-control-plane/local-snapshot.js';
import { loadRecordingSigner } from './recordings/recording-key-secret.js';
import { startRecordingService, type RecordingService } from './recordings/recording-service.js';
import type { RecordingStore, RetentionOptions } from './recordings/recording-store.js';

export const LEASE_NAME = 'gatehouse-operator';
export const DEFAULT_SIDECAR_IMAGE = 'gatehouse/sidecar:0.1.0';
/** As config/deploy/30-webhooks.yaml names them (injection, AccessRequest decisions; validation). */
export const DEFAULT_WEBHOOK_CONFIGURATIONS = { mutating: ['gatehouse-sidecar-injector', 'gatehouse-accessrequest-decisions'], validating: ['gatehouse-validation'] } as const;

/** The control plane's serving certificate and the CA sidecars verify it with. */
export interface ServingCertificates {
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
}

/**
 * The same, as files someone else keeps current (a mounted Secret cert-manager renews): re-read on an
 * interval, and a renewed pair is served without a restart.
 */
export interface ServingCertificateFiles {
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  /** How often the files are read again (default 10 s). */
  readonly intervalMs?: number;
}

export type IdentityVerification = 'token-review' | 'jwks';

/** Where session recordings uploaded by sidecars (ReportEvents) are stored, and for how long. */
export interface RecordingOptions {
  readonly dir: string;
  readonly retention?: RetentionOptions;
  /** The Secret in the operator's namespace holding the checkpoint signing key; gatehouse-recording-key by default. */
  readonly keySecretName?: string;
}

/** Where the admin server publishes the recording key's public JWKS, for `gatehouse sessions verify --key`. */
export const RECORDING_JWKS_PATH = '/recordings/jwks.json';

export interface OperatorOptions {
  /** Kubeconfig file; KUBECONFIG, ~/.kube/config or the pod's ServiceAccount when absent. */
  readonly kubeconfigPath?: string;
  /** The operator's own namespace (Lease, webhook certificate Secret). */
  readonly namespace: string;
  /** Service name in front of the operator, for certificate SANs. */
  readonly serviceName: string;
  /** This replica's name in the Lease; the pod name in a cluster. */
  readonly identity?: string;
  readonly leaderElect: boolean;
  /** Address every server binds; 0.0.0.0 by default. */
  readonly host?: string;
  readonly controlPlanePort: number;
  readonly webhookPort: number;
  readonly adminPort: number;
  /** host:port sidecars dial for the control plane; `SERVICE.NAMESPACE.svc:15010` by default. */
  readonly controlPlaneAddress?: string;
  /** Image of the injected sidecar. */
  readonly sidecarImage?: string;
  /** Webhook configurations whose caBundle the certificate manager keeps current. */
  readonly webhookConfigurations?: { readonly mutating: readonly string[]; readonly validating: readonly string[] };
  /** TokenReview through the API server (default), or offline against the API server's /openid/v1/jwks. */
  readonly identityVerification?: IdentityVerification;
  /** `iss` of ServiceAccount tokens; discovered from the API server when absent. */
  readonly serviceAccountIssuer?: string;
  /**
   * The serving certificate of the webhooks and the control plane, and its CA, from files. Without
   * it the operator keeps its own CA and certificate in a Secret and patches the webhooks' caBundle.
   */
  readonly certificates?: ServingCertificates;
  /** Certificate files watched for renewals; wins over `certificates`. */
  readonly certificateFiles?: ServingCertificateFiles;
  readonly logger: Logger;
  readonly registry?: Registry;
  /** Lease timing; client-go's defaults (15 s, 10 s, 2 s) when absent. */
  readonly leaseTiming?: { readonly leaseDurationMs: number; readonly renewDeadlineMs: number; readonly retryPeriodMs: number };
  /** Debounce of the cluster control plane's recompute. */
  readonly controlPlaneDebounceMs?: number;
  /** Grace period for discovery streams on shutdown. */
  readonly drainMs?: number;
  /** Revoke every issued credential on shutdown (dynamic roles dropped). Default true. */
  readonly revokeOnShutdown?: boolean;
  /** Store session recordings; without it ReportEvents answers UNIMPLEMENTED and sidecars keep events in their spool. */
  readonly recordings?: RecordingOptions;
  /** Where new AccessRequests and decisions are announced (generic JSON webhook, Slack-compatible); nowhere by default. */
  readonly approvalNotifications?: NotificationTargets;
  /**
   * The operator's own Kubernetes user, the only one the decision webhook lets initialise and expire
   * AccessRequests. Asked from the API server (a TokenReview of the operator's own token) when absent.
   */
  readonly operatorUser?: string;
  /**
   * Synthetic reviews sent through a private copy of the injection webhook before the operator
   * reports ready, so the first real pods are not served by cold code (admission-warmup.ts);
   * 0 turns it off. Default DEFAULT_WARMUP_REVIEWS, time-boxed.
   */
  readonly admissionWarmupReviews?: number;
}

export interface RunningOperator {
  readonly ports: { readonly controlPlane: number; readonly webhook: number; readonly admin: number };
  /** The CA sidecars and the API server trust for this operator's certificate. */
  caBundle(): string;
  readonly registry: Registry;
  readonly controlPlane: ClusterControlPlane;
  /** The recording store, when recordings are on. */
  readonly recordings?: RecordingStore;
  isLeader(): boolean;
  close(): Promise<void>;
}

type Cleanup = () => Promise<void> | void;

const WATCHED: Record<WatchedKind | 'Pod' | 'Namespace', ResourceType> = {
  Namespace: RESOURCE_TYPES.namespaces,
  NonHumanIdentity: RESOURCE_TYPES.nonHumanIdentities,
  ProtectedResource: RESOURCE_TYPES.protectedResources,
  AccessPolicy: RESOURCE_TYPES.accessPolicies,
  Secret: RESOURCE_TYPES.secrets,
  ServiceAccount: RESOURCE_TYPES.serviceAccounts,
  Pod: RESOURCE_TYPES.pods,
};

type Informers = Record<WatchedKind | 'Pod' | 'Namespace', Informer<KubeObject>>;

/**
 * Only pods the injection webhook labelled: those are the ones the control plane serves, and
 * caching every pod of a large cluster would cost the operator memory and a watch event per pod.
 */
const SELECTORS: Partial<Record<keyof Informers, string>> = { Pod: `${INJECTED_LABEL}=true` };

/** Informers are typed by the Kubernetes layer's KubeObject; the stores hand out the API's own types. */
function storeOf<T>(informer: Informer<KubeObject>): ObjectStore<T> {
  return {
    get: (namespace, name) => informer.get(namespace, name) as T | undefined,
    list: (namespace) => informer.list(namespace) as T[],
  };
}

/** The API server's address, CA and the operator's token, for TokenReview and the JWKS. */
async function apiServerAccess(kubeConfig: KubeConfig): Promise<ApiServerAccess> {
  const cluster = kubeConfig.getCurrentCluster();
  const user = kubeConfig.getCurrentUser();
  if (!cluster) throw new GatehouseError('GH_ERR_OPERATOR_STARTUP', { detail: 'the kubeconfig names no current cluster' });
  if (!user?.token && process.env.KUBERNETES_SERVICE_HOST) return inClusterApiServer(process.env);
  const token = user?.token;
  if (!token) throw new GatehouseError('GH_ERR_OPERATOR_STARTUP', { detail: 'sidecar tokens are verified through the API server, which needs a bearer token in the kubeconfig (or the pod\'s ServiceAccount)' });
  const ca = cluster.caData ? Buffer.from(cluster.caData, 'base64') : cluster.caFile ? await import('node:fs/promises').then((fs) => fs.readFile(cluster.caFile!)) : undefined;
  if (!ca) throw new GatehouseError('GH_ERR_OPERATOR_STARTUP', { detail: `the kubeconfig gives no CA for ${cluster.server}; sidecar tokens are verified only over verified TLS` });
  return { server: new URL(cluster.server), ca, bearerToken: async () => token };
}

async function serviceAccountVerifier(api: ApiServerAccess, mode: IdentityVerification, issuer: string): Promise<ServiceAccountVerifier> {
  if (mode === 'jwks') return createServiceAccountTokenVerifier({ issuer, jwks: clusterJwks(api) });
  return createTokenReviewVerifier({ server: api.server, ca: api.ca, bearerToken: api.bearerToken });
}

function startInformers(client: KubeClient, logger: Logger, metrics: KubeMetrics): Informers {
  const informers = {} as Informers;
  for (const [kind, type] of Object.entries(WATCHED) as [keyof Informers, ResourceType][]) {
    const labelSelector = SELECTORS[kind];
    informers[kind] = new Informer<KubeObject>({
      client, type, logger, metrics,
      ...(labelSelector === undefined ? {} : { labelSelector }),
      // Only what Gatehouse reads of a pod is cached: a scale-up's pods arrive by the hundred. Secrets
      // whose type Gatehouse never reads (Helm releases, tokens) are cached without their data.
      ...(kind === 'Pod' ? { transform: cachedPod } : kind === 'Secret' ? { transform: cachedSecret } : {}),
    });
  }
  return informers;
}

/** Calls `handler` with the object (the old one too on updates) for every add, update and delete. */
function onEveryChange(informer: Informer<KubeObject>, handler: (object: KubeObject, old?: KubeObject) => void): void {
  informer.on('add', (object) => handler(object));
  informer.on('update', (object, old) => handler(object, old));
  informer.on('delete', (object) => handler(object));
}

export async function startOperator(options: OperatorOptions, signal?: AbortSignal): Promise<RunningOperator> {
  const cleanups: Cleanup[] = [];
  const log = options.logger.child({ component: 'operator' });
  const closeAll = async (): Promise<void> => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      try {
        await cleanup();
      } catch (error) {
        log.warn({ err: error instanceof Error ? error.message : String(error) }, 'shutdown step failed');
      }
    }
  };
  try {
    return await start(options, cleanups, closeAll, signal);
  } catch (error) {
    await closeAll();
    throw error;
  }
}

async function start(options: OperatorOptions, cleanups: Cleanup[], closeAll: () => Promise<void>, signal?: AbortSignal): Promise<RunningOperator> {
  const { logger } = options;
  const log = logger.child({ component: 'operator' });
  const host = options.host ?? '0.0.0.0';
  const registry = options.registry ?? new Registry();
  const kubeMetrics = createKubeMetrics(registry);
  const kubeConfig = loadKubeConfig(options.kubeconfigPath === undefined ? {} : { kubeconfigPath: options.kubeconfigPath });
  const client = createKubeClient({ kubeConfig, metrics: kubeMetrics });
  cleanups.push(() => client.close?.());
  let phase = 'informers not synced';

  // Servers first that only need to exist: health and metrics answer from the start.
  let recordingJwks: string | undefined;
  const admin: AdminServer = await startAdminServer({
    host, port: options.adminPort, registry, notReadyReason: () => (phase === 'ready' ? undefined : phase),
    routes: (request, response) => serveRecordingJwks(request, response, recordingJwks, options.recordings !== undefined),
  });
  cleanups.push(() => admin.close());

  const informers = startInformers(client, logger, kubeMetrics);
  const stores: ClusterStores & { pods: ObjectStore<KubePod> } = {
    identities: storeOf(informers.NonHumanIdentity),
    resources: storeOf(informers.ProtectedResource),
    policies: storeOf(informers.AccessPolicy),
    secrets: storeOf(informers.Secret),
    serviceAccounts: storeOf(informers.ServiceAccount),
    pods: storeOf(informers.Pod),
  };

  const cache = new SnapshotCache();
  const cpMetrics = createControlPlaneMetrics({ registry, status: cache });
  const controlPlane = new ClusterControlPlane({
    stores,
    cache,
    issuers: clusterCredentialIssuers({ secrets: secretLookupFrom(stores.secrets), logger, jwtIssuer: `https://${options.serviceName}.${options.namespace}.svc` }),
    logger,
    registry,
    ...(options.controlPlaneDebounceMs !== undefined ? { debounceMs: options.controlPlaneDebounceMs } : {}),
    onNodeRemoved: (nodeId) => cpMetrics.forgetNode(nodeId),
  });
  cleanups.push(() => controlPlane.close({ revoke: options.revokeOnShutdown ?? true }));

  // Reconcilers run in leadership terms; events between terms are dropped (a term starts with a full pass).
  let term: () => ReconcileTerm | undefined = () => undefined;
  const validation = new ClusterValidation(stores);
  const deps = { stores, validation, writer: kubeWriter(client) };
  const reconcilers: ReconcilerSet = {
    identities: new IdentityReconciler(deps),
    resources: new ResourceReconciler({ ...deps, revoker: controlPlane, logger }),
    policies: new PolicyReconciler(deps),
  };
  wireEvents(informers, stores, controlPlane, () => term());
  const identityAccess = new IdentityAccessCache((namespace, serviceAccount) => identityAccessFromStores(stores, namespace, serviceAccount));
  invalidateOnChange(informers, identityAccess);

  for (const informer of Object.values(informers)) informer.start();
  cleanups.push(() => Promise.all(Object.values(informers).map((informer) => informer.stop())).then(() => undefined));
  await Promise.all(Object.values(informers).map((informer) => informer.waitForSync(signal)));
  log.info('informers synced');
  phase = 'control plane not listening';
  controlPlane.start();

  const tls = await servingTls(options, client);
  cleanups.push(() => tls.stop());
  const authenticator = await clusterNodeAuthenticator(options, kubeConfig, stores);
  const recordings = options.recordings ? await startRecordings(options.recordings, options, client, registry, authenticator) : undefined;
  // Cleanups run in reverse: the discovery server stops taking uploads first, then open sessions are sealed.
  if (recordings) cleanups.push(() => recordings.close());
  if (recordings) recordingJwks = JSON.stringify({ keys: [recordings.publicJwk] });
  const approvals = await clusterApprovals(options, kubeConfig, client, registry, authenticator);
  // Before the servers' cleanups, so it runs after them: no new request is queued while it drains.
  cleanups.push(() => flushWithin(approvals, options.drainMs ?? 5_000, log));
  const extraHandlers: ExtraDiscoveryHandlers = {
    ...(recordings ? { ReportEvents: recordings.reportEvents } : {}),
    RequestApproval: approvals.handler,
  };
  const discovery = await startControlPlaneServer(options, authenticator, extraHandlers, cache, cpMetrics, host, tls.source);
  cleanups.push(() => discovery.close(options.drainMs ?? 5_000));
  const webhooks = await startWebhookServer({
    host,
    port: options.webhookPort,
    tls: tls.source,
    injection: (pod, namespace) => injectionContext(options, identityAccess, informers.Namespace, client, tls.caBundle(), pod, namespace),
    clusterView: (namespace) => clusterView(stores, namespace),
    accessRequests: approvals.webhook,
    logger,
    registry,
  });
  cleanups.push(() => webhooks.close(options.drainMs ?? 5_000));

  const reconciling = startReconcilers(options, client, reconcilers, stores, kubeMetrics);
  term = reconciling.current;
  cleanups.push(() => reconciling.stop());

  // Last before ready: the informers are synced and the real webhook already answers, and /readyz
  // says what is left while the warm-up runs.
  phase = 'admission warm-up';
  await runAdmissionWarmup({
    reviews: options.admissionWarmupReviews ?? DEFAULT_WARMUP_REVIEWS,
    tls: tls.source,
    caBundle: tls.caBundle(),
    sidecar: {
      operatorNamespace: options.namespace,
      sidecarImage: options.sidecarImage ?? DEFAULT_SIDECAR_IMAGE,
      controlPlaneAddress: options.controlPlaneAddress ?? `${options.serviceName}.${options.namespace}.svc:15010`,
      controlPlaneCa: tls.caBundle(),
    },
    logger: log,
  });

  phase = 'ready';
  log.info({ controlPlanePort: discovery.port, webhookPort: webhooks.port, adminPort: admin.port, leaderElect: options.leaderElect }, 'operator ready');
  return {
    ports: { controlPlane: discovery.port, webhook: webhooks.port, admin: admin.port },
    caBundle: () => tls.caBundle(),
    registry,
    controlPlane,
    ...(recordings ? { recordings: recordings.store } : {}),
    isLeader: () => term() !== undefined,
    close: async () => {
      phase = 'shutting down';
      await closeAll();
    },
  };
}

interface Reconciling {
  /** The running term; undefined while another replica leads. */
  readonly current: () => ReconcileTerm | undefined;
  /** Ends the term and gives up the Lease. */
  stop(): Promise<void>;
}

/** Reconcile terms: one for good without --leader-elect, else one per leadership of the Lease. */
function startReconcilers(options: OperatorOptions, client: KubeClient, reconcilers: ReconcilerSet, stores: ClusterStores, metrics: KubeMetrics): Reconciling {
  const { logger } = options;
  let term: ReconcileTerm | undefined;
  const startTerm = (): void => {
    term = new ReconcileTerm({ reconcilers, stores, logger, metrics });
    logger.info('reconcilers started');
  };
  const stopTerm = async (): Promise<void> => {
    const ending = term;
    term = undefined;
    await ending?.stop();
  };
  if (!options.leaderElect) {
    startTerm();
    return { current: () => term, stop: stopTerm };
  }
  const timing = options.leaseTiming ?? { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };
  const elector = new LeaderElector({
    client,
    namespace: options.namespace,
    name: LEASE_NAME,
    identity: options.identity ?? hostname(),
    ...timing,
    logger,
    metrics,
    onStartedLeading: () => startTerm(),
    onStoppedLeading: () => void stopTerm(),
  });
  elector.start();
  return {
    current: () => term,
    stop: async () => {
      await stopTerm();
      await elector.stop();
    },
  };
}

/**
 * An update that changed neither the spec (generation) nor the deletion state: our own status and
 * finalizer writes. Nothing depends on those, and reacting would make every status write wake the
 * whole namespace again.
 */
function isStatusOnly(object: KubeObject, old: KubeObject | undefined): boolean {
  if (old === undefined || object.metadata.generation === undefined) return false;
  return object.metadata.generation === old.metadata.generation && object.metadata.deletionTimestamp === old.metadata.deletionTimestamp;
}

/** Whether an update can change what the control plane serves the pod. */
function servedDifferently(pod: KubePod, old: KubePod): boolean {
  return carriesSidecar(pod) !== carriesSidecar(old) || serviceAccountOf(pod) !== serviceAccountOf(old) || pod.metadata.uid !== old.metadata.uid;
}

/** Informer events: the control plane recomputes, and the current term reconciles what depends on the change. */
function wireEvents(informers: Informers, stores: ClusterStores, controlPlane: ClusterControlPlane, term: () => ReconcileTerm | undefined): void {
  const kinds: WatchedKind[] = ['NonHumanIdentity', 'ProtectedResource', 'AccessPolicy', 'Secret', 'ServiceAccount'];
  for (const kind of kinds) {
    onEveryChange(informers[kind], (object, old) => {
      if (isStatusOnly(object, old)) return;
      const dependents = dependentsOf(stores, changedObject(kind, object));
      // Secrets nobody names and ServiceAccounts matter to no snapshot.
      if (kind !== 'ServiceAccount' && (kind !== 'Secret' || dependents.resources.length > 0)) controlPlane.changed();
      term()?.enqueue(dependents);
    });
  }
  // Pods change status all the time; only gaining, losing or ending the sidecar matters, or another
  // ServiceAccount (a pod re-created under the same name). Each redoes that pod's snapshot alone.
  informers.Pod.on('add', (object) => {
    if (carriesSidecar(object as KubePod)) controlPlane.podChanged(object as KubePod);
  });
  informers.Pod.on('update', (object, old) => {
    if (old === undefined || servedDifferently(object as KubePod, old as KubePod)) controlPlane.podChanged(object as KubePod);
  });
  informers.Pod.on('delete', (object) => {
    if (carriesSidecar(object as KubePod)) controlPlane.podChanged(object as KubePod);
  });
}

interface ServingTls {
  readonly source: CertificateSource;
  caBundle(): string;
  stop(): void;
}

/** Certificate, key and CA from files, re-read when the certificate changes (cert-manager renewals). */
async function watchedCertificateFiles(files: ServingCertificateFiles, logger: Logger): Promise<ServingTls> {
  const source = await FileCertificateSource.open({
    certFile: files.certFile, keyFile: files.keyFile, logger, ...(files.intervalMs !== undefined ? { intervalMs: files.intervalMs } : {}),
  });
  let caPem = await readFile(files.caFile, 'utf8');
  const unsubscribe = source.onChange(() => {
    readFile(files.caFile, 'utf8').then(
      (pem) => { caPem = pem; },
      (error: unknown) => logger.warn({ err: error, caFile: files.caFile }, 'cannot read the CA file; injecting the previous CA'),
    );
  });
  return { source, caBundle: () => caPem, stop: () => { unsubscribe(); source.close(); } };
}

/** The certificate from files when given, else the operator's own, kept in a Secret and rotated. */
async function servingTls(options: OperatorOptions, client: KubeClient): Promise<ServingTls> {
  if (options.certificateFiles) return watchedCertificateFiles(options.certificateFiles, options.logger);
  const files = options.certificates;
  if (files) return { source: new StaticCertificateSource({ cert: files.certPem, key: files.keyPem }), caBundle: () => files.caPem, stop: () => undefined };
  const configurations = options.webhookConfigurations ?? DEFAULT_WEBHOOK_CONFIGURATIONS;
  const manager = new WebhookCertManager({
    cluster: webhookTlsClusterFrom(client),
    namespace: options.namespace,
    serviceName: options.serviceName,
    mutatingWebhookConfigurations: configurations.mutating,
    validatingWebhookConfigurations: configurations.validating,
    logger: options.logger,
  });
  await manager.reconcile();
  manager.start();
  return { source: manager, caBundle: () => manager.caBundle(), stop: () => manager.stop() };
}

/**
 * The identity claiming a ServiceAccount and the resources it may reach, from the namespace's objects
 * in the caches: builds the namespace's config and the identity's full snapshot, so the webhook asks
 * it through an IdentityAccessCache.
 */
function identityAccessFromStores(stores: ClusterStores, namespace: string, serviceAccount: string): IdentityAccess {
  const config = configFromStores(stores, { namespace, live: true });
  const kubePod: KubePod = { metadata: { name: '', namespace }, spec: { serviceAccountName: serviceAccount } };
  const identity = identityOfPod(kubePod, config.identities);
  if (!identity) return { resources: [] };
  const resources = selectForIdentity(config, identity.metadata.name, namespace).snapshot.resources.map((entry) => entry.resource);
  return { identity: identity.metadata.name, resources };
}

/** Every change to an object the injection answer is built from drops the answers of the object's namespace. */
function invalidateOnChange(informers: Informers, cache: IdentityAccessCache): void {
  const kinds: WatchedKind[] = ['NonHumanIdentity', 'ProtectedResource', 'AccessPolicy', 'Secret', 'ServiceAccount'];
  for (const kind of kinds) onEveryChange(informers[kind], (object) => cache.invalidate(object.metadata.namespace));
}

/** What the injection webhook needs to know about a pod's surroundings, from the caches. */
async function injectionContext(
  options: OperatorOptions,
  access: IdentityAccessCache,
  namespaces: Informer<KubeObject>,
  client: KubeClient,
  caBundle: string,
  pod: PodLike,
  namespace: string,
): Promise<InjectionContext> {
  // A namespace created a moment ago may not be in the cache yet.
  const namespaceObject = namespaces.get(undefined, namespace) ?? (await client.get(RESOURCE_TYPES.namespaces, undefined, namespace));
  const { identity, resources } = access.lookup(namespace, pod.spec?.serviceAccountName ?? 'default');
  return injectionContextOf({
    namespace,
    namespaceLabels: namespaceObject?.metadata.labels ?? {},
    operatorNamespace: options.namespace,
    sidecarImage: options.sidecarImage ?? DEFAULT_SIDECAR_IMAGE,
    controlPlaneAddress: options.controlPlaneAddress ?? `${options.serviceName}.${options.namespace}.svc:15010`,
    controlPlaneCa: caBundle,
    identity,
    resources,
  });
}

/**
 * A namespace's objects for the validating webhook. Secret values other than PEM certificates are
 * blanked: validation looks only at which keys exist and whether a CA key holds a certificate.
 */
function clusterView(stores: ClusterStores, namespace: string): ClusterObjects {
  const secrets = stores.secrets.list(namespace).map((secret: KubeSecret) => {
    const decoded = decodeSecret(secret);
    const data = Object.fromEntries(Object.entries(decoded.data).map(([key, value]) => [key, value.includes('-----BEGIN CERTIFICATE-----') ? value : '']));
    return { ...decoded, data };
  });
  return { identities: stores.identities.list(namespace), resources: stores.resources.list(namespace), policies: stores.policies.list(namespace), secrets };
}

/** Sidecars prove their pod with its projected ServiceAccount token: one authenticator for every method of the service. */
async function clusterNodeAuthenticator(options: OperatorOptions, kubeConfig: KubeConfig, stores: ClusterStores): Promise<NodeAuthenticator> {
  const api = await apiServerAccess(kubeConfig);
  const issuer = options.serviceAccountIssuer ?? (await discoverClusterIssuer(api));
  const verifier = await serviceAccountVerifier(api, options.identityVerification ?? 'token-review', issuer);
  return nodeAuthenticatorFrom(createAuthenticator({ serviceAccounts: { issuer, verifier }, identities: () => stores.identities.list() }));
}

/** Approvals in the cluster: the RequestApproval handler, the decision webhook's rules and the notifier, metrics on the operator's registry. */
async function clusterApprovals(options: OperatorOptions, kubeConfig: KubeConfig, client: KubeClient, registry: Registry, authenticator: NodeAuthenticator): Promise<ClusterApprovals> {
  const operatorUser = options.operatorUser ?? (await ownKubernetesUser(await apiServerAccess(kubeConfig)));
  options.logger.info({ operatorUser, notifications: Object.keys(options.approvalNotifications ?? {}) }, 'approvals served');
  return createClusterApprovals({ kube: client, registry, logger: options.logger, authenticator, operatorUser, notifications: options.approvalNotifications ?? {} });
}

/**
 * Who the API server says the operator is (TokenReview of its own token), so the decision webhook
 * trusts exactly the user the operator's writes arrive as; a guess from flags could trust someone else.
 */
async function ownKubernetesUser(api: ApiServerAccess): Promise<string> {
  const token = await api.bearerToken();
  const body = JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } });
  const response = await sendRequest(new URL(TOKEN_REVIEW_PATH, api.server), { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body }, { ca: api.ca, bearerToken: api.bearerToken })
    .catch((error: unknown) => {
      throw new GatehouseError('GH_ERR_OPERATOR_STARTUP', { detail: `the TokenReview of the operator's own token failed (${error instanceof Error ? error.message : String(error)}); pass --operator-user` }, { cause: error });
    });
  const review = response.status === 201 || response.status === 200 ? (parseJson(response.body) as { status?: { authenticated?: unknown; user?: { username?: unknown } } }) : undefined;
  const username = review?.status?.authenticated === true ? review.status.user?.username : undefined;
  if (typeof username !== 'string' || username === '') {
    throw new GatehouseError('GH_ERR_OPERATOR_STARTUP', { detail: `the API server did not say who the operator's own token belongs to (TokenReview answered ${response.status}); it needs create on tokenreviews, or pass --operator-user` });
  }
  return username;
}

/** Queued notifications get the drain period to go out; whatever is still retrying after it is dropped. */
async function flushWithin(approvals: ClusterApprovals, ms: number, log: Logger): Promise<void> {
  const flushed = await Promise.race([approvals.flush().then(() => true), delay(ms, false, { ref: false })]);
  if (!flushed) log.warn({ waitedMs: ms }, 'approval notifications still queued at shutdown were dropped');
}

interface RunningRecordings extends RecordingService {
  readonly publicJwk: object;
}

/** The recording store over its folder, signing with the key from the operator's Secret (created on first start). */
async function startRecordings(recording: RecordingOptions, options: OperatorOptions, client: KubeClient, registry: Registry, authenticator: NodeAuthenticator): Promise<RunningRecordings> {
  const signer = await loadRecordingSigner({
    client, namespace: options.namespace, logger: options.logger, ...(recording.keySecretName ? { secretName: recording.keySecretName } : {}),
  });
  const service = await startRecordingService({
    dir: recording.dir, signer, registry, logger: options.logger, authenticator, ...(recording.retention ? { retention: recording.retention } : {}),
  });
  options.logger.info({ dir: recording.dir, kid: signer.kid }, 'session recordings stored');
  return { ...service, close: () => service.close(), publicJwk: signer.publicJwk };
}

/** GET /recordings/jwks.json: the public half of the checkpoint key; public by nature, so served without auth. */
function serveRecordingJwks(request: IncomingMessage, response: ServerResponse, jwks: string | undefined, enabled: boolean): boolean {
  if (request.url?.split('?')[0] !== RECORDING_JWKS_PATH) return false;
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.writeHead(405, { allow: 'GET, HEAD' }).end();
  } else if (jwks === undefined) {
    response.writeHead(enabled ? 503 : 404, { 'content-type': 'text/plain' }).end(enabled ? 'recordings are not started yet\n' : 'recordings are off: start the operator with --recordings-dir\n');
  } else {
    response.writeHead(200, { 'content-type': 'application/jwk-set+json', 'cache-control': 'no-cache' }).end(request.method === 'HEAD' ? undefined : jwks);
  }
  return true;
}

/**
 * The discovery service, restarted on the same port when the serving certificate rotates (gRPC
 * cannot swap it in place). Sidecars reconnect with backoff and keep their snapshot meanwhile.
 */
async function startControlPlaneServer(
  options: OperatorOptions,
  authenticator: NodeAuthenticator,
  extraHandlers: ExtraDiscoveryHandlers,
  cache: SnapshotCache,
  metrics: ReturnType<typeof createControlPlaneMetrics>,
  host: string,
  tls: CertificateSource,
): Promise<DiscoveryServer> {
  const proto = loadDiscoveryProto();
  const serve = (port: number): Promise<DiscoveryServer> => {
    const { cert, key } = tls.current();
    return startDiscoveryServer({
      proto,
      watcher: cache,
      authenticator,
      extraHandlers,
      metrics,
      logger: options.logger,
      transport: { kind: 'tls', keyPem: key, certPem: cert },
      host,
      port,
    });
  };
  let server = await serve(options.controlPlanePort);
  const port = server.port;
  let restarting: Promise<void> = Promise.resolve();
  const stopWatching = tls.onChange(() => {
    restarting = restarting.then(async () => {
      await server.close(1_000);
      server = await serve(port);
      options.logger.info({ port }, 'policy discovery service restarted with the rotated certificate');
    }).catch((error: unknown) => options.logger.error({ err: error instanceof Error ? error.message : String(error) }, 'policy discovery service restart failed'));
  });
  return {
    port,
    connectedStreams: () => server.connectedStreams(),
    close: async (graceMs) => {
      stopWatching();
      await restarting;
      await server.close(graceMs);
    },
  };
}

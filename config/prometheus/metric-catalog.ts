// The metrics Gatehouse really exports, read from live prom-client registries: every process's metric
// factories and the classes that register metrics of their own are instantiated against fresh
// registries, so the dashboard and alert tests check names and labels against the code, not a list.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { silentLogger } from '../../api/logging/logger.js';
import { loadDiscoveryProto } from '../../api/proto/discovery-proto.js';
import { SqlClassifier } from '../../api/sql/classify.js';
import { createAdmissionMetrics } from '../../operator/admission/admission-metrics.js';
import { createApprovalMetrics } from '../../operator/approvals/approval-metrics.js';
import { ClusterControlPlane } from '../../operator/cluster-control-plane/cluster-control-plane.js';
import { secretLookupFrom } from '../../operator/cluster-control-plane/cluster-issuers.js';
import { createControlPlaneMetrics } from '../../operator/control-plane/control-plane-metrics.js';
import { SnapshotCache } from '../../operator/control-plane/snapshot-cache.js';
import { StaticCredentialIssuer } from '../../operator/credentials/static-issuer.js';
import { createKubeMetrics } from '../../operator/kube/kube-metrics.js';
import { storesFromFolder } from '../../operator/reconcile/testing/memory-cluster.js';
import { createRecordingMetrics } from '../../operator/recordings/recording-metrics.js';
import { createSidecarMetrics } from '../../sidecar/metrics/sidecar-metrics.js';
import { FileSessionRecorder } from '../../sidecar/recording/session-recorder.js';
import { UploadingRecorder } from '../../sidecar/recording/uploading-recorder.js';
import { Sidecar } from '../../sidecar/sidecar.js';

const REPO_ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');

export type MetricKind = 'counter' | 'gauge' | 'histogram' | 'summary';

export interface CatalogMetric {
  readonly name: string;
  readonly kind: MetricKind;
  readonly labelNames: readonly string[];
  /** Which process serves it: the operator or the sidecar. */
  readonly process: 'operator' | 'sidecar';
}

export interface MetricCatalog {
  /** Metric families by name (histograms under their base name). */
  readonly families: ReadonlyMap<string, CatalogMetric>;
  /** The family a series name belongs to: `x_bucket`, `x_sum` and `x_count` map to histogram `x`. */
  familyOf(seriesName: string): CatalogMetric | undefined;
}

function labelNamesOf(metric: unknown): readonly string[] {
  const names = (metric as { labelNames?: unknown }).labelNames;
  return Array.isArray(names) ? names.filter((name): name is string => typeof name === 'string') : [];
}

function addRegistry(families: Map<string, CatalogMetric>, registry: Registry, process: CatalogMetric['process']): void {
  for (const metric of registry.getMetricsAsArray()) {
    const kind = metric.type as unknown as MetricKind;
    families.set(metric.name, { name: metric.name, kind, labelNames: labelNamesOf(metric), process });
  }
}

/** The operator's registry as the operator process builds it, minus what needs a live cluster. */
async function operatorRegistry(): Promise<Registry> {
  const registry = new Registry();
  createKubeMetrics(registry);
  createAdmissionMetrics(registry);
  createRecordingMetrics(registry);
  createApprovalMetrics(registry);
  const cache = new SnapshotCache();
  createControlPlaneMetrics({ registry, status: cache });
  // The cluster control plane registers its metrics when constructed; it is never started here.
  const stores = await storesFromFolder(join(REPO_ROOT, 'config', 'samples'));
  new ClusterControlPlane({
    stores, cache, logger: silentLogger(), registry,
    issuers: { static: new StaticCredentialIssuer({ secrets: secretLookupFrom(stores.secrets) }) },
  });
  return registry;
}

/** The sidecar's registry: its metric set, the expiry gauge a Sidecar with a lease adds, and the recording uploader's. */
async function sidecarRegistry(scratch: string): Promise<Registry> {
  const metrics = createSidecarMetrics();
  const recorder = new FileSessionRecorder(join(scratch, 'recordings'));
  const sidecar = new Sidecar({
    logger: silentLogger(), metrics, classifier: new SqlClassifier(), recorder,
    hashKey: Buffer.from('metric-catalog-hash-key-0123456789'), lease: { expiresAt: () => undefined },
  });
  const uploader = await UploadingRecorder.start({
    proto: loadDiscoveryProto(), address: '127.0.0.1:9', transport: { kind: 'plaintext-local-mode' }, nodeId: 'catalog/pod',
    token: () => 'unused', spoolDir: join(scratch, 'spool'), logger: silentLogger(), registry: metrics.registry,
  });
  await uploader.close();
  await sidecar.stop(0);
  return metrics.registry;
}

export async function buildMetricCatalog(): Promise<MetricCatalog> {
  const scratch = await mkdtemp(join(tmpdir(), 'gatehouse-metric-catalog-'));
  try {
    const families = new Map<string, CatalogMetric>();
    addRegistry(families, await operatorRegistry(), 'operator');
    addRegistry(families, await sidecarRegistry(scratch), 'sidecar');
    return {
      families,
      familyOf(seriesName: string) {
        const direct = families.get(seriesName);
        if (direct) return direct;
        const base = seriesName.replace(/_(bucket|sum|count)$/, '');
        const family = families.get(base);
        if (!family || base === seriesName) return undefined;
        // _bucket exists only on histograms; _sum and _count on histograms and summaries.
        const suffix = seriesName.slice(base.length + 1);
        if (family.kind === 'histogram' || (family.kind === 'summary' && suffix !== 'bucket')) return family;
        return undefined;
      },
    };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

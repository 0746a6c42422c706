// Rendered manifests for chart and kustomize tests: parse multi-document YAML output and find objects
// by kind and name, typed with @kubernetes/client-node's models.
import { parseAllDocuments } from 'yaml';

export interface Manifest {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  readonly [field: string]: unknown;
}

function isManifest(value: unknown): value is Manifest {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as { kind?: unknown; metadata?: { name?: unknown } };
  return typeof candidate.kind === 'string' && typeof candidate.metadata?.name === 'string';
}

export function parseManifests(text: string): Manifest[] {
  const manifests: Manifest[] = [];
  for (const document of parseAllDocuments(text)) {
    if (document.errors.length > 0) throw new Error(`YAML error: ${document.errors[0].message}`);
    const value: unknown = document.toJS();
    if (value === null || value === undefined) continue;
    if (!isManifest(value)) throw new Error(`not a Kubernetes object: ${JSON.stringify(value).slice(0, 200)}`);
    manifests.push(value);
  }
  return manifests;
}

export class Rendered {
  constructor(readonly manifests: readonly Manifest[]) {}

  /** The one object of this kind (and name); throws when there is none or several. */
  get<T>(kind: string, name?: string): T {
    const found = this.manifests.filter((manifest) => manifest.kind === kind && (name === undefined || manifest.metadata.name === name));
    if (found.length !== 1) throw new Error(`expected one ${kind}${name ? `/${name}` : ''}, found ${found.length}`);
    return found[0] as unknown as T;
  }

  all(kind: string): Manifest[] {
    return this.manifests.filter((manifest) => manifest.kind === kind);
  }

  /** `Kind/name` of every object, sorted. */
  ids(): string[] {
    return this.manifests.map((manifest) => `${manifest.kind}/${manifest.metadata.name}`).sort();
  }
}

/** Removes the labels only Helm adds, so a Helm render and the kustomize base compare equal. */
export function withoutHelmLabels(manifest: Manifest): Manifest {
  const copy = structuredClone(manifest) as Manifest & { spec?: { template?: { metadata?: { labels?: Record<string, string> } } } };
  for (const labels of [copy.metadata.labels, copy.spec?.template?.metadata?.labels]) {
    if (!labels) continue;
    delete labels['app.kubernetes.io/managed-by'];
    delete labels['helm.sh/chart'];
  }
  return copy;
}

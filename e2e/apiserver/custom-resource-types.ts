// Turning a CustomResourceDefinition into a served resource type, with the checks the real server
// makes before accepting one (names, group, exactly one storage version, a schema per version).
import { invalid, type StatusCause } from './api-status.js';
import { isJsonObject, type JsonObject, type KubeObject } from './objects.js';
import type { PrinterColumn, ResourceType } from './resource-types.js';

interface CrdVersion {
  name?: string;
  served?: boolean;
  storage?: boolean;
  schema?: { openAPIV3Schema?: JsonObject };
  subresources?: { status?: unknown; scale?: unknown };
  additionalPrinterColumns?: PrinterColumn[];
}

interface CrdSpec {
  group?: string;
  scope?: string;
  names?: { plural?: string; singular?: string; kind?: string; listKind?: string; shortNames?: string[]; categories?: string[] };
  versions?: CrdVersion[];
}

const CRD_REF = { group: 'apiextensions.k8s.io', plural: 'customresourcedefinitions', kind: 'CustomResourceDefinition' };

/** Checks a CRD and derives its resource type; throws 422 Invalid listing what is wrong. */
export function resourceTypeFromCrd(crd: KubeObject): ResourceType {
  const spec = (isJsonObject(crd.spec) ? crd.spec : {}) as CrdSpec;
  const names = spec.names ?? {};
  const versions = spec.versions ?? [];
  const causes: StatusCause[] = [];
  const name = crd.metadata.name ?? '';
  if (!spec.group) causes.push({ reason: 'FieldValueRequired', message: 'Required value', field: 'spec.group' });
  if (!names.plural) causes.push({ reason: 'FieldValueRequired', message: 'Required value', field: 'spec.names.plural' });
  if (!names.kind) causes.push({ reason: 'FieldValueRequired', message: 'Required value', field: 'spec.names.kind' });
  if (spec.scope !== 'Namespaced' && spec.scope !== 'Cluster') causes.push({ reason: 'FieldValueNotSupported', message: `Unsupported value: "${spec.scope ?? ''}": supported values: "Cluster", "Namespaced"`, field: 'spec.scope' });
  if (spec.group && names.plural && name !== `${names.plural}.${spec.group}`) {
    causes.push({ reason: 'FieldValueInvalid', message: `Invalid value: "${name}": must be spec.names.plural+"."+spec.group`, field: 'metadata.name' });
  }
  if (versions.filter((version) => version.storage === true).length !== 1) {
    causes.push({ reason: 'FieldValueInvalid', message: 'Invalid value: must have exactly one version marked as storage version', field: 'spec.versions' });
  }
  versions.forEach((version, index) => {
    if (!isJsonObject(version.schema?.openAPIV3Schema)) causes.push({ reason: 'FieldValueRequired', message: 'Required value: schemas are required', field: `spec.versions[${index}].schema.openAPIV3Schema` });
  });
  if (causes.length > 0) throw invalid(CRD_REF, name, causes);
  const served = versions.filter((version) => version.served !== false);
  // The storage version is preferred in discovery when served; the rest follow in spec order.
  served.sort((a, b) => Number(b.storage === true) - Number(a.storage === true));
  return {
    group: spec.group!,
    versions: served.map((version) => version.name!),
    plural: names.plural!,
    singular: names.singular ?? names.kind!.toLowerCase(),
    kind: names.kind!,
    namespaced: spec.scope === 'Namespaced',
    shortNames: names.shortNames ?? [],
    categories: names.categories ?? [],
    // A subresource declared on any version is served for all; versions rarely differ here.
    subresources: served.some((version) => version.subresources?.status !== undefined) ? ['status'] : [],
    schemas: new Map(served.map((version) => [version.name!, version.schema!.openAPIV3Schema!])),
    printerColumns: new Map(served.map((version) => [version.name!, version.additionalPrinterColumns ?? []])),
    crdName: name,
  };
}

/** What the real server reports once a CRD is served. */
export function establishedStatus(crd: KubeObject): JsonObject {
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const spec = (isJsonObject(crd.spec) ? crd.spec : {}) as CrdSpec & JsonObject;
  const condition = (type: string, reason: string, message: string): JsonObject => ({ type, status: 'True', lastTransitionTime: now, reason, message });
  return {
    conditions: [
      condition('NamesAccepted', 'NoConflicts', 'no conflicts found'),
      condition('Established', 'InitialNamesAccepted', 'the initial names have been accepted'),
    ],
    acceptedNames: (spec.names ?? {}) as JsonObject,
    storedVersions: (spec.versions ?? []).filter((version) => version.storage === true).map((version) => version.name ?? ''),
  };
}

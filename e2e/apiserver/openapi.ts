// The OpenAPI documents kubectl reads before apply, create and explain. /openapi/v3 lists one document
// per group version; each declares the fieldValidation query parameter on PATCH (so kubectl
// validates server-side with fieldValidation=Strict) and the schema of its kinds (so `kubectl
// explain` works): a CRD's openAPIV3Schema, or a built-in's from the client-node models. /openapi/v2
// is answered with an empty protobuf Document: kubectl insists on fetching it, and an empty one means
// "no client-side schema", which is what we want.
import { createHash } from 'node:crypto';
import { builtinModel, openApiComponentsOf } from './builtin-schema.js';
import { apiVersionOf, type ResourceType, type ResourceTypeRegistry } from './resource-types.js';

// The media type the real server answers with (the request's '@' form does not parse as a MIME type).
export const OPENAPI_V2_MEDIA_TYPE = 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf';

function groupVersionPath(group: string, version: string): string {
  return group === '' ? `api/${version}` : `apis/${group}/${version}`;
}

function schemaName(type: ResourceType, version: string): string {
  const reversed = type.group === '' ? 'io.k8s.api.core' : type.group.split('.').reverse().join('.');
  return `${reversed}.${version}.${type.kind}`;
}

/** The per-group-version document, or undefined when the group version is not served. */
export function groupVersionDocument(registry: ResourceTypeRegistry, group: string, version: string): Record<string, unknown> | undefined {
  const types = registry.all().filter((type) => type.group === group && type.versions.includes(version) && type.virtual !== true);
  if (types.length === 0) return undefined;
  const paths: Record<string, unknown> = {};
  const schemas: Record<string, unknown> = {};
  const fieldValidation = { name: 'fieldValidation', in: 'query', description: 'Ignore, Warn or Strict handling of unknown fields.', schema: { type: 'string', uniqueItems: true } };
  for (const type of types) {
    const gvk = { group: type.group, version, kind: type.kind };
    const prefix = `/${groupVersionPath(group, version)}${type.namespaced ? '/namespaces/{namespace}' : ''}/${type.plural}`;
    const operation = (action: string) => ({
      operationId: `${action}${type.kind}`, 'x-kubernetes-action': action, 'x-kubernetes-group-version-kind': gvk,
      parameters: [fieldValidation], responses: { '200': { description: 'OK' } },
    });
    paths[prefix] = { post: operation('post') };
    paths[`${prefix}/{name}`] = { put: operation('put'), patch: operation('patch') };
    const schema = type.schemas?.get(version);
    const model = type.crdName === undefined ? builtinModel(apiVersionOf(group, version), type.kind) : undefined;
    if (model !== undefined) {
      const { root, components } = openApiComponentsOf(model);
      Object.assign(schemas, components);
      schemas[root] = { ...components[root], 'x-kubernetes-group-version-kind': [gvk] };
    } else if (schema !== undefined) {
      const properties = { ...(schema.properties as Record<string, unknown> | undefined), metadata: { description: 'Standard object metadata.', type: 'object' } };
      schemas[schemaName(type, version)] = { ...schema, properties, 'x-kubernetes-group-version-kind': [gvk] };
    }
  }
  return { openapi: '3.0.0', info: { title: 'Kubernetes', version: 'v1.34.0' }, paths, components: { schemas } };
}

/** The /openapi/v3 index: every served group version with a content-hashed URL, as kubectl caches by it. */
export function openApiIndex(registry: ResourceTypeRegistry): Record<string, unknown> {
  const paths: Record<string, unknown> = {};
  for (const [group, versions] of registry.groups()) {
    for (const version of versions) {
      const document = groupVersionDocument(registry, group, version);
      if (document === undefined) continue;
      const hash = createHash('sha512').update(JSON.stringify(document)).digest('hex').slice(0, 64).toUpperCase();
      paths[groupVersionPath(group, version)] = { serverRelativeURL: `/openapi/v3/${groupVersionPath(group, version)}?hash=${hash}` };
    }
  }
  return { paths };
}

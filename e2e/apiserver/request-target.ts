// Parses an API path (/api/v1/namespaces/ns/pods/name/status, /apis/g/v/watch/..., …) into the resource
// type, namespace, name and subresource it addresses, using the type registry to tell a namespaced
// collection (/namespaces/ns/pods) from a namespace subresource (/namespaces/ns/status).
import { ApiStatusError } from './api-status.js';
import type { ResourceType, ResourceTypeRegistry } from './resource-types.js';

export interface ResourceTarget {
  readonly type: ResourceType;
  readonly version: string;
  readonly namespace?: string;
  readonly name?: string;
  readonly subresource?: string;
  /** True for the deprecated /watch/ path prefix; `?watch=1` is read from the query. */
  readonly watchPath: boolean;
}

export type ParsedPath =
  | { kind: 'core-versions' }
  | { kind: 'groups' }
  | { kind: 'group'; group: string }
  | { kind: 'resources'; group: string; version: string }
  | { kind: 'resource'; target: ResourceTarget }
  | { kind: 'other' };

function pathNotFound(path: string): ApiStatusError {
  return new ApiStatusError(404, 'NotFound', `the server could not find the requested resource`, { causes: [{ reason: 'UnexpectedServerResponse', message: `404 page not found: ${path}` }] });
}

export function parseApiPath(path: string, registry: ResourceTypeRegistry): ParsedPath {
  const segments = path.split('/').filter((segment) => segment !== '').map(decodeURIComponent);
  let group: string;
  let version: string | undefined;
  let rest: string[];
  if (segments[0] === 'api') {
    if (segments.length === 1) return { kind: 'core-versions' };
    [group, version, rest] = ['', segments[1], segments.slice(2)];
  } else if (segments[0] === 'apis') {
    if (segments.length === 1) return { kind: 'groups' };
    if (segments.length === 2) return { kind: 'group', group: segments[1] };
    [group, version, rest] = [segments[1], segments[2], segments.slice(3)];
  } else return { kind: 'other' };
  if (rest.length === 0) return { kind: 'resources', group, version };
  const watchPath = rest[0] === 'watch';
  if (watchPath) rest = rest.slice(1);
  const find = (plural: string | undefined): ResourceType | undefined => (plural === undefined ? undefined : registry.find(group, version!, plural));
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3 && find(rest[2]) !== undefined && find(rest[2])!.namespaced) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const type = find(rest[0]);
  if (type === undefined || rest.length > 3) throw pathNotFound(path);
  const [, name, subresource] = rest;
  if (subresource !== undefined && !type.subresources.includes(subresource)) throw pathNotFound(path);
  return { kind: 'resource', target: { type, version, namespace, name, subresource, watchPath } };
}

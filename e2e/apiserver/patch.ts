// The four PATCH content types the API server accepts: RFC 6902 JSON patch, RFC 7386 merge patch,
// strategic merge patch (lists of named things merge by key, with kubectl's $patch, $setElementOrder,
// $retainKeys and $deleteFromPrimitiveList directives) and server-side apply, approximated as a
// strategic merge of the applied configuration that records the applier in managedFields.
import { ApiStatusError, badRequest } from './api-status.js';
import { clone, isJsonObject, jsonEqual } from './objects.js';

export type PatchType = 'json' | 'merge' | 'strategic' | 'apply';

export function patchTypeOf(contentType: string | undefined): PatchType {
  const media = (contentType ?? '').split(';')[0].trim();
  switch (media) {
    case 'application/json-patch+json': return 'json';
    case 'application/merge-patch+json': return 'merge';
    case 'application/strategic-merge-patch+json': return 'strategic';
    case 'application/apply-patch+yaml':
    case 'application/apply-patch+cbor': return 'apply';
    default:
      throw new ApiStatusError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json`);
  }
}

function pointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw badRequest(`invalid JSON pointer ${JSON.stringify(path)}`);
  return path.slice(1).split('/').map((token) => token.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function parentOf(document: unknown, tokens: string[], path: string): { parent: Record<string, unknown> | unknown[]; last: string } {
  let current: unknown = document;
  for (const token of tokens.slice(0, -1)) {
    if (Array.isArray(current)) current = current[Number(token)];
    else if (isJsonObject(current)) current = current[token];
    else current = undefined;
    if (current === undefined) throw new ApiStatusError(422, 'Invalid', `the server rejected our request due to an error in our request: doc is missing path: "${path}": missing value`);
  }
  if (!Array.isArray(current) && !isJsonObject(current)) throw new ApiStatusError(422, 'Invalid', `doc is missing path: "${path}"`);
  return { parent: current as Record<string, unknown> | unknown[], last: tokens[tokens.length - 1] };
}

function arrayIndex(array: unknown[], token: string, allowEnd: boolean, path: string): number {
  if (token === '-' && allowEnd) return array.length;
  const index = Number(token);
  if (!/^\d+$/.test(token) || index > array.length || (!allowEnd && index === array.length)) {
    throw new ApiStatusError(422, 'Invalid', `the server rejected our request: index out of range at ${JSON.stringify(path)}`);
  }
  return index;
}

function getAt(document: unknown, path: string): unknown {
  let current = document;
  for (const token of pointer(path)) {
    current = Array.isArray(current) ? current[Number(token)] : isJsonObject(current) ? current[token] : undefined;
    if (current === undefined) throw new ApiStatusError(422, 'Invalid', `doc is missing path: "${path}": missing value`);
  }
  return current;
}

function removeAt(document: unknown, path: string): unknown {
  const { parent, last } = parentOf(document, pointer(path), path);
  if (Array.isArray(parent)) return parent.splice(arrayIndex(parent, last, false, path), 1)[0];
  if (!(last in parent)) throw new ApiStatusError(422, 'Invalid', `doc is missing path: "${path}": missing value`);
  const value = parent[last];
  delete parent[last];
  return value;
}

function addAt(document: unknown, path: string, value: unknown, replace: boolean): unknown {
  const tokens = pointer(path);
  if (tokens.length === 0) return clone(value);
  const { parent, last } = parentOf(document, tokens, path);
  if (Array.isArray(parent)) {
    const index = arrayIndex(parent, last, !replace, path);
    parent.splice(index, replace ? 1 : 0, clone(value));
  } else {
    if (replace && !(last in parent)) throw new ApiStatusError(422, 'Invalid', `doc is missing key: "${path}": missing value`);
    parent[last] = clone(value);
  }
  return document;
}

interface JsonPatchOperation {
  op: string;
  path: string;
  from?: string;
  value?: unknown;
}

export function applyJsonPatch(document: unknown, operations: unknown): unknown {
  if (!Array.isArray(operations)) throw badRequest('json patch must be an array of operations');
  let result = clone(document);
  for (const raw of operations as JsonPatchOperation[]) {
    if (!isJsonObject(raw) || typeof raw.path !== 'string') throw badRequest('json patch operation needs op and path');
    switch (raw.op) {
      case 'add': result = addAt(result, raw.path, raw.value, false); break;
      case 'replace': result = addAt(result, raw.path, raw.value, true); break;
      case 'remove': removeAt(result, raw.path); break;
      case 'move': result = addAt(result, raw.path, removeAt(result, String(raw.from)), false); break;
      case 'copy': result = addAt(result, raw.path, getAt(result, String(raw.from)), false); break;
      case 'test':
        if (!jsonEqual(getAt(result, raw.path), raw.value)) throw new ApiStatusError(422, 'Invalid', `testing value ${raw.path} failed`);
        break;
      default: throw badRequest(`unknown json patch operation ${JSON.stringify(raw.op)}`);
    }
  }
  return result;
}

export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isJsonObject(patch)) return clone(patch);
  const result: Record<string, unknown> = isJsonObject(target) ? clone(target) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = applyMergePatch(result[key], value);
  }
  return result;
}

/** Merge keys of built-in list fields (from the Kubernetes types' patchMergeKey tags) that tests meet. */
const MERGE_KEYS: Record<string, string> = {
  containers: 'name', initContainers: 'name', ephemeralContainers: 'name', env: 'name', volumes: 'name',
  volumeMounts: 'mountPath', volumeDevices: 'devicePath', ports: 'containerPort', imagePullSecrets: 'name',
  conditions: 'type', ownerReferences: 'uid', tolerations: 'key', hostAliases: 'ip', envFrom: '',
  webhooks: 'name', containerStatuses: 'name', initContainerStatuses: 'name',
};

/** Service ports merge by port, not containerPort; detected by the shape of the list items. */
function mergeKeyFor(field: string, items: unknown[]): string | undefined {
  const key = MERGE_KEYS[field];
  if (key === undefined || key === '') return undefined;
  if (field === 'ports' && items.some((item) => isJsonObject(item) && 'port' in item && !('containerPort' in item))) return 'port';
  return key;
}

function mergeList(field: string, original: unknown, patch: unknown[], deletions: unknown[]): unknown[] {
  const current = Array.isArray(original) ? clone(original) : [];
  const key = mergeKeyFor(field, [...current, ...patch]);
  if (key === undefined) {
    if (deletions.length > 0) return current.filter((item) => !deletions.some((gone) => jsonEqual(gone, item)));
    return clone(patch);
  }
  if (patch.some((item) => isJsonObject(item) && item.$patch === 'replace')) {
    return patch.filter((item) => !(isJsonObject(item) && item.$patch === 'replace')).map(stripDirectives);
  }
  let result = current;
  for (const item of patch) {
    if (!isJsonObject(item)) continue;
    const index = result.findIndex((existing) => isJsonObject(existing) && jsonEqual(existing[key], item[key]));
    if (item.$patch === 'delete') {
      if (index >= 0) result = result.filter((_, at) => at !== index);
    } else if (index >= 0) result[index] = applyStrategicMergePatch(result[index], item);
    else result.push(stripDirectives(item));
  }
  return result;
}

function stripDirectives(value: unknown): unknown {
  return isJsonObject(value) ? applyStrategicMergePatch({}, value) : value;
}

export function applyStrategicMergePatch(target: unknown, patch: unknown): unknown {
  if (!isJsonObject(patch)) return clone(patch);
  if (patch.$patch === 'replace') {
    const { $patch: _replace, ...rest } = patch;
    return stripDirectives(rest);
  }
  if (patch.$patch === 'delete') return undefined;
  let result: Record<string, unknown> = isJsonObject(target) ? clone(target) : {};
  const retainKeys = Array.isArray(patch.$retainKeys) ? (patch.$retainKeys as string[]) : undefined;
  for (const [key, value] of Object.entries(patch)) {
    if (key.startsWith('$setElementOrder/') || key === '$retainKeys' || key === '$patch') continue;
    if (key.startsWith('$deleteFromPrimitiveList/')) {
      const field = key.slice('$deleteFromPrimitiveList/'.length);
      if (Array.isArray(result[field]) && Array.isArray(value)) result[field] = (result[field] as unknown[]).filter((item) => !value.some((gone) => jsonEqual(gone, item)));
      continue;
    }
    if (value === null) delete result[key];
    else if (Array.isArray(value)) result[key] = mergeList(key, result[key], value, []);
    else if (isJsonObject(value)) {
      const merged = applyStrategicMergePatch(result[key], value);
      if (merged === undefined) delete result[key];
      else result[key] = merged;
    } else result[key] = value;
  }
  if (retainKeys !== undefined) result = Object.fromEntries(Object.entries(result).filter(([key]) => retainKeys.includes(key)));
  return result;
}

/**
 * Server-side apply, simplified: fields this manager applied last time but no longer applies are
 * removed (unless another manager's managedFields entry lists them), then the applied configuration is
 * merged into the live object as a strategic merge (maps merge, keyed lists merge by key, other lists
 * are replaced). Conflicts between managers are not detected, so `force` changes nothing.
 */
export function applyServerSideApply(live: unknown, applied: unknown, previouslyApplied?: FieldSet, otherManagers: FieldSet[] = []): unknown {
  const base = previouslyApplied === undefined ? live : removeDroppedFields(clone(live), previouslyApplied, fieldsV1Of(applied), otherManagers);
  return applyStrategicMergePatch(base, applied);
}

export type FieldSet = Record<string, unknown>;

function removeDroppedFields(live: unknown, previous: FieldSet, next: FieldSet, others: FieldSet[]): unknown {
  if (!isJsonObject(live)) return live;
  for (const [key, previousChild] of Object.entries(previous)) {
    if (!key.startsWith('f:')) continue;
    const name = key.slice(2);
    const nextChild = next[key];
    const otherChildren = others.map((other) => other[key]).filter(isJsonObject);
    if (nextChild === undefined) {
      if (otherChildren.length === 0) delete live[name];
    } else if (isJsonObject(previousChild) && isJsonObject(nextChild) && Object.keys(previousChild).length > 0) {
      removeDroppedFields(live[name], previousChild, nextChild, otherChildren);
    }
  }
  return live;
}

/** The FieldsV1 set of an applied configuration (`f:spec` → `f:replicas` …), for managedFields. */
export function fieldsV1Of(value: unknown): Record<string, unknown> {
  if (!isJsonObject(value)) return {};
  const fields: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(value)) {
    if (key === 'apiVersion' || key === 'kind') continue;
    if (key === 'metadata' && isJsonObject(child)) {
      const { name: _n, namespace: _ns, resourceVersion: _rv, uid: _uid, managedFields: _mf, ...rest } = child;
      if (Object.keys(rest).length > 0) fields['f:metadata'] = fieldsV1Of(rest);
      continue;
    }
    fields[`f:${key}`] = isJsonObject(child) ? fieldsV1Of(child) : {};
  }
  return fields;
}

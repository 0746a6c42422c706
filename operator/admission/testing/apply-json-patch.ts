// An RFC 6902 applier for tests, written from the RFC and independent of json-patch.ts, so a patch
// the diff produces is checked by applying it the way the API server would (strictly: a path that
// does not exist is an error, not a silent no-op).
import type { JsonPatchOperation, JsonValue } from '../json-patch.js';

type Container = JsonValue[] | { [key: string]: JsonValue };

function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new Error(`JSON pointer ${pointer} must start with /`);
  return pointer.slice(1).split('/').map((segment) => segment.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function isContainer(value: JsonValue | undefined): value is Container {
  return typeof value === 'object' && value !== null;
}

function resolveParent(document: JsonValue, segments: string[], pointer: string): Container {
  let current: JsonValue | undefined = document;
  for (const segment of segments.slice(0, -1)) {
    if (!isContainer(current)) throw new Error(`${pointer}: ${segment} is not inside an object or array`);
    current = Array.isArray(current) ? current[arrayIndex(current, segment, pointer, false)] : current[segment];
  }
  if (!isContainer(current)) throw new Error(`${pointer}: parent does not exist`);
  return current;
}

function arrayIndex(array: JsonValue[], segment: string, pointer: string, forAdd: boolean): number {
  if (forAdd && segment === '-') return array.length;
  if (!/^(0|[1-9][0-9]*)$/.test(segment)) throw new Error(`${pointer}: ${segment} is not an array index`);
  const index = Number(segment);
  if (index > array.length || (!forAdd && index === array.length)) throw new Error(`${pointer}: index ${index} out of bounds`);
  return index;
}

function getValue(document: JsonValue, pointer: string): JsonValue {
  const segments = parsePointer(pointer);
  if (segments.length === 0) return document;
  const parent = resolveParent(document, segments, pointer);
  const last = segments[segments.length - 1]!;
  if (Array.isArray(parent)) return parent[arrayIndex(parent, last, pointer, false)]!;
  if (!(last in parent)) throw new Error(`${pointer}: member does not exist`);
  return parent[last]!;
}

/** Applies the patch to a deep copy of `document` and returns the copy; throws on any invalid operation. */
export function applyJsonPatch(document: JsonValue, patch: readonly JsonPatchOperation[]): JsonValue {
  let result = structuredClone(document);
  for (const operation of patch) {
    const segments = parsePointer(operation.path);
    if (operation.op === 'test') {
      if (JSON.stringify(getValue(result, operation.path)) !== JSON.stringify(operation.value)) {
        throw new Error(`test failed at ${operation.path}`);
      }
      continue;
    }
    if (segments.length === 0) {
      if (operation.op === 'remove') throw new Error('cannot remove the whole document');
      result = structuredClone(operation.value);
      continue;
    }
    const parent = resolveParent(result, segments, operation.path);
    const last = segments[segments.length - 1]!;
    if (Array.isArray(parent)) {
      const index = arrayIndex(parent, last, operation.path, operation.op === 'add');
      if (operation.op === 'add') parent.splice(index, 0, structuredClone(operation.value));
      else if (operation.op === 'replace') parent[index] = structuredClone(operation.value);
      else parent.splice(index, 1);
    } else {
      if (operation.op !== 'add' && !(last in parent)) throw new Error(`${operation.path}: member does not exist`);
      if (operation.op === 'remove') delete parent[last];
      else parent[last] = structuredClone(operation.value);
    }
  }
  return result;
}

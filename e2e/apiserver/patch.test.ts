// Unit tests of the four patch types and the FieldsV1 sets server-side apply records.
import { applyJsonPatch, applyMergePatch, applyStrategicMergePatch, fieldsV1Of, patchTypeOf } from './patch.js';
import { ApiStatusError } from './api-status.js';

describe('JSON patch', () => {
  const document = { a: { b: [1, 2, 3] }, c: 'x' };
  it('adds, replaces, removes, moves, copies and tests', () => {
    expect(applyJsonPatch(document, [
      { op: 'add', path: '/a/b/1', value: 9 }, { op: 'replace', path: '/c', value: 'y' }, { op: 'remove', path: '/a/b/0' },
      { op: 'copy', from: '/c', path: '/d' }, { op: 'move', from: '/d', path: '/e' }, { op: 'test', path: '/e', value: 'y' }, { op: 'add', path: '/a/b/-', value: 4 },
    ])).toEqual({ a: { b: [9, 2, 3, 4] }, c: 'y', e: 'y' });
    expect(document.a.b).toEqual([1, 2, 3]);
  });
  it('fails a test operation that does not hold, and paths that do not exist', () => {
    expect(() => applyJsonPatch(document, [{ op: 'test', path: '/c', value: 'z' }])).toThrow(ApiStatusError);
    expect(() => applyJsonPatch(document, [{ op: 'replace', path: '/nope/x', value: 1 }])).toThrow(ApiStatusError);
    expect(() => applyJsonPatch(document, [{ op: 'remove', path: '/missing' }])).toThrow(ApiStatusError);
  });
});

describe('merge patch', () => {
  it('merges maps, deletes nulls, replaces lists', () => {
    expect(applyMergePatch({ a: { b: 1, c: 2 }, l: [1, 2] }, { a: { c: null, d: 3 }, l: [3] })).toEqual({ a: { b: 1, d: 3 }, l: [3] });
  });
});

describe('strategic merge patch', () => {
  const pod = { spec: { containers: [{ name: 'app', image: 'a:1', env: [{ name: 'A', value: '1' }] }, { name: 'side', image: 's:1' }], finalizers: ['x', 'y'] } };
  it('merges containers and env by name and keeps unnamed lists replaced', () => {
    const patched = applyStrategicMergePatch(pod, { spec: { containers: [{ name: 'app', env: [{ name: 'B', value: '2' }] }], finalizers: ['z'] } }) as typeof pod;
    expect(patched.spec.containers.map((container) => container.name)).toEqual(['app', 'side']);
    expect(patched.spec.containers[0]).toEqual({ name: 'app', image: 'a:1', env: [{ name: 'A', value: '1' }, { name: 'B', value: '2' }] });
    expect(patched.spec.finalizers).toEqual(['z']);
  });
  it('understands kubectl\'s $patch, $setElementOrder and $deleteFromPrimitiveList directives', () => {
    const patched = applyStrategicMergePatch(pod, {
      spec: { '$setElementOrder/containers': [{ name: 'app' }], containers: [{ name: 'side', $patch: 'delete' }], '$deleteFromPrimitiveList/finalizers': ['x'] },
    }) as typeof pod;
    expect(patched.spec.containers.map((container) => container.name)).toEqual(['app']);
    expect(patched.spec.finalizers).toEqual(['y']);
    expect(JSON.stringify(patched)).not.toContain('$');
  });
});

describe('patch content types and managed fields', () => {
  it('maps content types and refuses unknown ones with 415', () => {
    expect(patchTypeOf('application/apply-patch+yaml')).toBe('apply');
    expect(patchTypeOf('application/strategic-merge-patch+json; charset=utf-8')).toBe('strategic');
    expect(() => patchTypeOf('text/plain')).toThrow(expect.objectContaining({ code: 415 }));
  });
  it('lists the applied fields in FieldsV1 form', () => {
    expect(fieldsV1Of({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x', labels: { a: '1' } }, data: { k: 'v' } }))
      .toEqual({ 'f:metadata': { 'f:labels': { 'f:a': {} } }, 'f:data': { 'f:k': {} } });
  });
});

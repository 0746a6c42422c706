import fc from 'fast-check';
import { createJsonPatch, type JsonValue } from './json-patch.js';
import { applyJsonPatch } from './testing/apply-json-patch.js';

describe('createJsonPatch', () => {
  it('returns no operations for equal documents', () => {
    expect(createJsonPatch({ a: [1, { b: 'x' }] }, { a: [1, { b: 'x' }] })).toEqual([]);
  });

  it('inserts an element at the front of an array as one add at index 0', () => {
    const original = { spec: { initContainers: [{ name: 'migrate' }] } };
    const wanted = { spec: { initContainers: [{ name: 'gatehouse-sidecar' }, { name: 'migrate' }] } };
    expect(createJsonPatch(original, wanted)).toEqual([
      { op: 'add', path: '/spec/initContainers/0', value: { name: 'gatehouse-sidecar' } },
    ]);
  });

  it('escapes / and ~ in keys (annotation names) as RFC 6901 says', () => {
    const patch = createJsonPatch({ annotations: { a: '1' } }, { annotations: { a: '1', 'gatehouse.dev/in~jected': 'true' } });
    expect(patch).toEqual([{ op: 'add', path: '/annotations/gatehouse.dev~1in~0jected', value: 'true' }]);
    expect(applyJsonPatch({ annotations: { a: '1' } }, patch)).toEqual({ annotations: { a: '1', 'gatehouse.dev/in~jected': 'true' } });
  });

  it('edits a changed array element in place rather than removing and re-adding it', () => {
    const original = { containers: [{ name: 'app', env: [{ name: 'A', value: '1' }] }] };
    const wanted = { containers: [{ name: 'app', env: [{ name: 'A', value: '1' }, { name: 'PGHOST', value: '127.0.0.1' }] }] };
    expect(createJsonPatch(original, wanted)).toEqual([
      { op: 'add', path: '/containers/0/env/1', value: { name: 'PGHOST', value: '127.0.0.1' } },
    ]);
  });

  it('treats undefined properties as absent', () => {
    const wanted = { a: 1, b: undefined } as unknown as JsonValue;
    expect(createJsonPatch({ a: 1 }, wanted)).toEqual([]);
    expect(createJsonPatch({ a: 1, b: 2 }, wanted)).toEqual([{ op: 'remove', path: '/b' }]);
  });

  it('replaces a value whose type changes', () => {
    expect(createJsonPatch({ a: [1] }, { a: { b: 1 } })).toEqual([{ op: 'replace', path: '/a', value: { b: 1 } }]);
  });

  it('produces a patch that turns any original into any wanted document (property)', () => {
    const key = fc.constantFrom('a', 'b', 'c', 'x/y', 'm~n', '');
    const json = fc.letrec<{ value: JsonValue }>((tie) => ({
      value: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        fc.constantFrom<JsonValue>(null, true, 0, 1, 'a', 'b'),
        fc.array(tie('value'), { maxLength: 5 }),
        fc.dictionary(key, tie('value'), { maxKeys: 4 }),
      ),
    })).value;
    fc.assert(
      fc.property(json, json, (original, wanted) => {
        const patched = applyJsonPatch(original, createJsonPatch(original, wanted));
        expect(patched).toEqual(wanted);
      }),
      { numRuns: 400 },
    );
  });
});

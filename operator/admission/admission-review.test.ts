import fc from 'fast-check';
import { allow, base64Utf8, deny, encodeAdmissionReview, reviewOf, type AdmissionResponse } from './admission-review.js';
import type { JsonPatchOperation, JsonValue } from './json-patch.js';
import { injectSidecar } from './pod-injection.js';
import { appPod, injectionContext } from './testing/injection-fixtures.js';

/** The answer as it was written before encodeAdmissionReview: the reference it must match byte for byte. */
function reference(response: AdmissionResponse): string {
  return JSON.stringify(reviewOf(response));
}

/** Any string, lone surrogates and characters JSON escapes included. */
const anyText = fc.string({ unit: 'binary' });
const jsonValue = fc.jsonValue() as fc.Arbitrary<JsonValue>;
const patchOperation: fc.Arbitrary<JsonPatchOperation> = fc.oneof(
  fc.record({ op: fc.constant('add' as const), path: anyText, value: jsonValue }),
  fc.record({ op: fc.constant('remove' as const), path: anyText }),
  fc.record({ op: fc.constant('replace' as const), path: anyText, value: fc.string({ unit: 'grapheme' }) }),
);

describe('base64Utf8', () => {
  test('is the base64 of the UTF-8 bytes for any text, ASCII or not', () => {
    fc.assert(fc.property(anyText, (text) => {
      expect(base64Utf8(text)).toBe(Buffer.from(text, 'utf8').toString('base64'));
    }), { numRuns: 500 });
    for (const text of ['', 'plain ascii {"op":"add"}', 'é', '\u00ff', '日本', '\ud83d\ude00', '\ud800 lone']) {
      expect(Buffer.from(base64Utf8(text), 'base64').toString('utf8')).toBe(Buffer.from(text, 'utf8').toString('utf8'));
    }
  });
});

describe('allow', () => {
  test('carries the patch as base64 of its JSON, and no patch fields without operations', () => {
    const patch: JsonPatchOperation[] = [{ op: 'add', path: '/metadata/labels/caf\u00e9', value: 'gr\u00fc\u00df \ud83d\ude00' }];
    const response = allow('uid-1', { patch });
    expect(response.patchType).toBe('JSONPatch');
    expect(JSON.parse(Buffer.from(response.patch!, 'base64').toString('utf8'))).toEqual(patch);
    expect(allow('uid-2', { patch: [] })).toEqual({ uid: 'uid-2', allowed: true });
  });
});

describe('encodeAdmissionReview', () => {
  test('writes byte for byte what JSON.stringify(reviewOf(...)) writes for what allow builds', () => {
    fc.assert(fc.property(anyText, fc.array(patchOperation, { maxLength: 4 }), fc.array(anyText, { maxLength: 3 }), (uid, patch, warnings) => {
      const response = allow(uid, { patch, warnings });
      expect(encodeAdmissionReview(response)).toBe(reference(response));
    }), { numRuns: 400 });
  });

  test('matches JSON.stringify for a real injection patch', () => {
    const response = allow('705ab4f5-6393-11e8-b7cc-42010a800002', { patch: injectSidecar(appPod(), injectionContext()).patch });
    expect(response.patch).toBeDefined();
    const text = encodeAdmissionReview(response);
    expect(text).toBe(reference(response));
    expect(JSON.parse(text)).toEqual(reviewOf(response));
  });

  test('matches JSON.stringify for denials and for responses allow did not build', () => {
    fc.assert(fc.property(anyText, anyText, fc.constantFrom(400, 403, 500), fc.array(anyText, { maxLength: 3 }), (uid, message, code, warnings) => {
      const response = deny(uid, message, code, warnings);
      expect(encodeAdmissionReview(response)).toBe(reference(response));
    }), { numRuns: 200 });
    // A patch someone wrote by hand is not trusted to be base64: it goes through JSON.stringify.
    const handMade: AdmissionResponse = { uid: 'u', allowed: true, patchType: 'JSONPatch', patch: 'not "base64"\n' };
    expect(encodeAdmissionReview(handMade)).toBe(reference(handMade));
    expect(JSON.parse(encodeAdmissionReview(handMade)).response.patch).toBe('not "base64"\n');
    // A copy of allow's answer is another object: also the safe path, with the same text.
    const copy = { ...allow('u', { patch: [{ op: 'remove', path: '/a' }] }) };
    expect(encodeAdmissionReview(copy)).toBe(reference(copy));
  });
});

// Unit tests of CRD schema validation, defaulting and pruning, against a schema using every supported keyword.
import { validateCustomResource, type Schema } from './schema-validation.js';

const schema: Schema = {
  type: 'object',
  required: ['spec'],
  properties: {
    spec: {
      type: 'object',
      required: ['mode'],
      properties: {
        mode: { type: 'string', enum: ['a', 'b'] },
        name: { type: 'string', pattern: '^[a-z]+$', minLength: 2, maxLength: 5 },
        port: { type: 'integer', minimum: 1, maximum: 65535 },
        tags: { type: 'array', maxItems: 2, items: { type: 'string' }, 'x-kubernetes-list-type': 'set' },
        ttl: { type: 'string', default: '1h' },
        labels: { type: 'object', additionalProperties: { type: 'string' } },
        free: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
        port2: { 'x-kubernetes-int-or-string': true },
      },
    },
    status: { type: 'object', properties: { ok: { type: 'boolean' } } },
  },
};

const fieldsOf = (object: Record<string, unknown>): string[] => validateCustomResource(schema, object).causes.map((cause) => `${cause.field} ${cause.reason}`);

describe('CRD schema validation', () => {
  it('accepts a valid object, applies defaults, prunes unknown fields and keeps preserved ones', () => {
    const result = validateCustomResource(schema, {
      apiVersion: 'x/v1', kind: 'X', metadata: { name: 'n', labels: { any: 'thing' } },
      spec: { mode: 'a', name: 'abc', port: 80, labels: { k: 'v' }, free: { deep: { x: 1 } }, port2: 'http', junk: 1 }, extra: true,
    });
    expect(result.causes).toEqual([]);
    expect(result.object).toEqual({
      apiVersion: 'x/v1', kind: 'X', metadata: { name: 'n', labels: { any: 'thing' } },
      spec: { mode: 'a', name: 'abc', port: 80, labels: { k: 'v' }, free: { deep: { x: 1 } }, port2: 'http', ttl: '1h' },
    });
    expect(result.unknownFields.sort()).toEqual(['extra', 'spec.junk']);
  });

  it('reports every violation with its field path', () => {
    expect(fieldsOf({ metadata: {} })).toEqual(['spec FieldValueRequired']);
    expect(fieldsOf({ spec: { mode: 'c', name: 'A1', port: 0, tags: ['x', 'x', 'y'], labels: { k: 1 }, port2: 1.5 } }).sort()).toEqual([
      'spec.labels.k FieldValueTypeInvalid', 'spec.mode FieldValueNotSupported', 'spec.name FieldValueInvalid', 'spec.port FieldValueInvalid',
      'spec.port2 FieldValueTypeInvalid', 'spec.tags FieldValueTooMany', 'spec.tags[1] FieldValueDuplicate',
    ]);
    expect(fieldsOf({ spec: { mode: 'a', name: 'abcdefg' } })).toEqual(['spec.name FieldValueTooLong']);
    expect(fieldsOf({ spec: { mode: 'a', port: '80' } })).toEqual(['spec.port FieldValueTypeInvalid']);
  });
});

// Small builders over TypeBox that keep the generated schemas inside what a Kubernetes structural
// schema allows (every node typed, enums as string enums, no $ref), so one definition serves as
// TypeScript type, local validator schema and CRD openAPIV3Schema.
import { Type, type TUnsafe, type TString, type TObject, type TProperties } from '@sinclair/typebox';

/** A string enum rendered as `{type: string, enum: [...]}` (TypeBox's literal unions would be anyOf). */
export function StringEnum<const T extends readonly string[]>(
  values: T,
  options: { description: string; default?: T[number] },
): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });
}

/** Go-style duration as Kubernetes writes them: 90s, 15m, 1h30m, 500ms. */
export const DURATION_PATTERN = '^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$';

export function Duration(description: string, defaultValue?: string): TString {
  return Type.String({
    description,
    pattern: DURATION_PATTERN,
    ...(defaultValue === undefined ? {} : { default: defaultValue }),
  });
}

/** RFC 1123 subdomain: what Kubernetes accepts as an object name. */
export const OBJECT_NAME_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';

export function ObjectName(description: string): TString {
  return Type.String({ description, pattern: OBJECT_NAME_PATTERN, minLength: 1, maxLength: 253 });
}

/** A CEL rule the API server enforces; `gatehouse validate` mirrors each one in code (cel-rules.ts). */
export interface CelRule {
  readonly rule: string;
  readonly message: string;
}

export function ObjectWithRules<T extends TProperties>(
  properties: T,
  options: { description: string; rules?: readonly CelRule[] },
): TObject<T> {
  const { rules, description } = options;
  return Type.Object(properties, {
    description,
    ...(rules && rules.length > 0 ? { 'x-kubernetes-validations': rules } : {}),
  });
}

export const Condition = Type.Object(
  {
    type: Type.String({ description: 'Condition type, e.g. Ready.' }),
    status: StringEnum(['True', 'False', 'Unknown'] as const, { description: 'True, False or Unknown.' }),
    reason: Type.String({ description: 'CamelCase reason for the last transition, e.g. ResourceNotFound.' }),
    message: Type.String({ description: 'Human-readable detail of the last transition.' }),
    lastTransitionTime: Type.String({ format: 'date-time', description: 'When status last changed.' }),
    observedGeneration: Type.Optional(
      Type.Integer({ minimum: 0, description: 'metadata.generation this condition was computed from.' }),
    ),
  },
  { description: 'Standard Kubernetes condition.' },
);

export const Conditions = Type.Array(Condition, {
  description: 'Latest observations of the object state; Ready summarises them.',
  'x-kubernetes-list-type': 'map',
  'x-kubernetes-list-map-keys': ['type'],
});

export const SecretReference = Type.Object(
  {
    name: ObjectName('Name of a Secret in the same namespace.'),
  },
  { description: 'Reference to a Secret in the same namespace.' },
);

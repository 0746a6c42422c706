// Checks one Gatehouse object against its kind's schema (kinds.ts) the way the API server would,
// plus strict unknown-field detection, and applies schema defaults. Errors come back as
// field-path problems a user can act on ("spec.rules[0].effect: must be one of allow, ...").
import AjvModule, { type ErrorObject, type ValidateFunction } from 'ajv';
import { openApiSchema } from '../kinds/crd.js';
import { KINDS, type GatehouseKind } from '../kinds/kinds.js';

// ajv ships CommonJS with a default export; under NodeNext ESM the class sits on `.default`.
const Ajv = ((AjvModule as unknown as { default?: typeof AjvModule.default }).default ??
  AjvModule) as unknown as typeof AjvModule.default;

export interface SchemaProblem {
  /** Field path like spec.rules[0].effect; empty for the object itself. */
  readonly path: readonly (string | number)[];
  readonly message: string;
}

/** Adds additionalProperties:false wherever properties are listed, so typos are caught, not pruned. */
function strictCopy(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(strictCopy);
  if (schema === null || typeof schema !== 'object') return schema;
  const copy: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) copy[key] = key === 'enum' ? value : strictCopy(value);
  if (copy.type === 'object' && copy.properties && copy.additionalProperties === undefined) {
    copy.additionalProperties = false;
  }
  return copy;
}

function metadataSchema(): Record<string, unknown> {
  return {
    type: 'object',
    required: ['name'],
    properties: {
      name: {
        type: 'string',
        minLength: 1,
        maxLength: 253,
        pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$',
      },
      namespace: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$', maxLength: 63 },
    },
  };
}

function compileKind(kind: GatehouseKind): ValidateFunction {
  const definition = KINDS.find((candidate) => candidate.kind === kind)!;
  const schema = strictCopy(openApiSchema(definition)) as Record<string, unknown>;
  const properties = schema.properties as Record<string, unknown>;
  // metadata is Kubernetes' own; allow its other fields (labels, annotations, uid...) untouched.
  properties.metadata = metadataSchema();
  const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false, validateFormats: false });
  return ajv.compile(schema);
}

const validators = new Map<GatehouseKind, ValidateFunction>();

function validatorFor(kind: GatehouseKind): ValidateFunction {
  let validate = validators.get(kind);
  if (!validate) {
    validate = compileKind(kind);
    validators.set(kind, validate);
  }
  return validate;
}

function pathOf(error: ErrorObject): (string | number)[] {
  const segments = error.instancePath
    .split('/')
    .slice(1)
    .map((segment) => segment.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((segment) => (/^[0-9]+$/.test(segment) ? Number(segment) : segment));
  if (error.keyword === 'required') segments.push((error.params as { missingProperty: string }).missingProperty);
  if (error.keyword === 'additionalProperties') {
    segments.push((error.params as { additionalProperty: string }).additionalProperty);
  }
  return segments;
}

function messageOf(error: ErrorObject): string {
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return 'required field is missing';
    case 'additionalProperties':
      return 'unknown field (check the spelling against `kubectl explain`)';
    case 'enum':
      return `must be one of ${(params.allowedValues as unknown[]).join(', ')}`;
    case 'pattern':
      return `${JSON.stringify(error.data)} does not match the expected format ${String(params.pattern)}`;
    case 'type':
      return `must be of type ${String(params.type)}, got ${describeType(error.data)}`;
    case 'minItems':
      return `must list at least ${String(params.limit)} item(s)`;
    case 'minimum':
    case 'maximum':
      return `must be ${error.keyword === 'minimum' ? '>=' : '<='} ${String(params.limit)}, got ${String(error.data)}`;
    default:
      return error.message ?? error.keyword;
  }
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

/**
 * Validates `object` (mutating it to apply schema defaults) and returns its problems; an enum or
 * type error deep in a union of branches reports once per field.
 */
export function checkAgainstSchema(kind: GatehouseKind, object: Record<string, unknown>): SchemaProblem[] {
  const validate = validatorFor(kind);
  if (validate(object)) return [];
  const seen = new Set<string>();
  const problems: SchemaProblem[] = [];
  for (const error of validate.errors ?? []) {
    const problem = { path: pathOf(error), message: messageOf(error) };
    const key = `${problem.path.join('.')}|${problem.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    problems.push(problem);
  }
  return problems;
}

export function formatFieldPath(path: readonly (string | number)[]): string {
  let text = '';
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`;
    else text += text === '' ? segment : `.${segment}`;
  }
  return text;
}

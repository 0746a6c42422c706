// Checks one Gatehouse object against its kind's schema (kinds.ts) the way the API server would,
// plus strict unknown-field detection, and applies schema defaults. Errors come back as
// field-path problems a user can act on ("spec.rules[0].effect: must be one of allow, ...").
import AjvModule, { type ErrorObject, type ValidateFunction } from 'ajv';
import { formatErrorMessage, type ErrorCode } from '../errors.js';
import { openApiSchema } from '../kinds/crd.js';
import { KINDS, type GatehouseKind } from '../kinds/kinds.js';
import { DURATION_PATTERN, OBJECT_NAME_PATTERN } from '../kinds/schema-builders.js';

// ajv ships CommonJS with a default export; under NodeNext ESM the class sits on `.default`.
const Ajv = ((AjvModule as unknown as { default?: typeof AjvModule.default }).default ??
  AjvModule) as unknown as typeof AjvModule.default;

export interface SchemaProblem {
  /** Field path like spec.rules[0].effect; empty for the object itself. */
  readonly path: readonly (string | number)[];
  readonly message: string;
  /** A more specific code than GH_ERR_MANIFEST_SCHEMA when there is one (e.g. GH_ERR_BAD_DURATION). */
  readonly code?: ErrorCode;
}

/**
 * Adds additionalProperties:false wherever properties are listed, so typos are caught, not pruned,
 * and uniqueItems to `x-kubernetes-list-type: set` lists, whose duplicates the API server rejects.
 */
function strictCopy(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(strictCopy);
  if (schema === null || typeof schema !== 'object') return schema;
  const copy: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) copy[key] = key === 'enum' ? value : strictCopy(value);
  if (copy.type === 'object' && copy.properties && copy.additionalProperties === undefined) {
    copy.additionalProperties = false;
  }
  if (copy.type === 'array' && copy['x-kubernetes-list-type'] === 'set') copy.uniqueItems = true;
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
        pattern: OBJECT_NAME_PATTERN,
        description: 'Object name.',
      },
      namespace: {
        type: 'string',
        pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$',
        maxLength: 63,
        description: 'Namespace: lowercase letters, digits and -, starting and ending with a letter or digit.',
      },
    },
  };
}

function compileKind(kind: GatehouseKind): ValidateFunction {
  const definition = KINDS.find((candidate) => candidate.kind === kind)!;
  const schema = strictCopy(openApiSchema(definition)) as Record<string, unknown>;
  const properties = schema.properties as Record<string, unknown>;
  // metadata is Kubernetes' own; allow its other fields (labels, annotations, uid...) untouched.
  properties.metadata = metadataSchema();
  // verbose: pattern errors quote the field's description, which says the expected format in words.
  const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false, validateFormats: false, verbose: true });
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
  if (error.keyword === 'uniqueItems') segments.push((error.params as { j: number }).j);
  return segments;
}

/** Regular expressions say little to a reader; these say what the value should look like. */
const PATTERN_MEANINGS: ReadonlyMap<string, string> = new Map([
  [OBJECT_NAME_PATTERN, 'a Kubernetes object name: lowercase letters, digits, - and ., starting and ending with a letter or digit (e.g. orders-db)'],
]);

function patternMessage(error: ErrorObject): string {
  const pattern = String((error.params as { pattern: string }).pattern);
  const value = JSON.stringify(error.data);
  const meaning = PATTERN_MEANINGS.get(pattern);
  if (meaning) return `${value} is not valid: expected ${meaning}`;
  const description = descriptionOf(error);
  if (description) return `${value} has the wrong format for this field (${description}; format ${pattern})`;
  return `${value} does not match the expected format ${pattern}`;
}

function unknownFieldMessage(error: ErrorObject): string {
  const field = (error.params as { additionalProperty: string }).additionalProperty;
  const properties = (error.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties ?? {};
  const known = Object.keys(properties);
  const distance = (candidate: string) => editDistance(candidate.toLowerCase(), field.toLowerCase());
  const closest = known.filter((candidate) => distance(candidate) <= 2).sort((a, b) => distance(a) - distance(b))[0];
  if (closest) return `unknown field ${JSON.stringify(field)}; did you mean ${JSON.stringify(closest)}?`;
  return `unknown field ${JSON.stringify(field)}; the fields here are ${known.join(', ')}`;
}

/** Levenshtein distance, for suggesting the field a typo meant. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

function descriptionOf(error: ErrorObject): string | undefined {
  const schema = error.parentSchema as { description?: unknown } | undefined;
  return typeof schema?.description === 'string' ? schema.description.replace(/\.$/, '') : undefined;
}

function problemOf(error: ErrorObject): SchemaProblem {
  const path = pathOf(error);
  if (error.keyword === 'pattern' && (error.params as { pattern: string }).pattern === DURATION_PATTERN) {
    const code = 'GH_ERR_BAD_DURATION';
    return { path, code, message: formatErrorMessage(code, { value: JSON.stringify(error.data) }) };
  }
  return { path, message: messageOf(error) };
}

function messageOf(error: ErrorObject): string {
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return 'required field is missing';
    case 'additionalProperties':
      return unknownFieldMessage(error);
    case 'enum':
      return `must be one of ${(params.allowedValues as unknown[]).join(', ')}`;
    case 'pattern':
      return patternMessage(error);
    case 'uniqueItems':
      return `duplicates item [${String(params.i)}]; this list is a set, so each value may appear only once`;
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
    const problem = problemOf(error);
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

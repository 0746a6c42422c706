// Validation, defaulting and pruning of custom resources against a CRD version's openAPIV3Schema, as
// the real API server does for structural schemas: unknown fields are pruned (not rejected) unless
// x-kubernetes-preserve-unknown-fields says keep them, defaults are applied, and every violation is
// reported as a Status cause with its field path. Deliberately skipped: CEL rules
// (x-kubernetes-validations) and string formats other than date-time; `gatehouse validate`
// checks the CEL rules offline, and a real cluster enforces them.
import type { StatusCause } from './api-status.js';
import { clone, isJsonObject, jsonEqual } from './objects.js';

export interface Schema {
  type?: string;
  nullable?: boolean;
  required?: string[];
  enum?: unknown[];
  pattern?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  exclusiveMaximum?: boolean;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  minProperties?: number;
  maxProperties?: number;
  format?: string;
  default?: unknown;
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: Schema | boolean;
  allOf?: Schema[];
  anyOf?: Schema[];
  oneOf?: Schema[];
  not?: Schema;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-embedded-resource'?: boolean;
  'x-kubernetes-list-type'?: string;
  'x-kubernetes-list-map-keys'?: string[];
}

/** Fields the API server owns at the root of every object; never pruned. */
const ROOT_FIELDS = new Set(['apiVersion', 'kind', 'metadata']);

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function typeMatches(schema: Schema, value: unknown): boolean {
  if (schema['x-kubernetes-int-or-string'] === true) return typeof value === 'string' || Number.isInteger(value);
  const actual = typeName(value);
  switch (schema.type) {
    case undefined: return true;
    case 'number': return actual === 'number' || actual === 'integer';
    case 'object': return actual === 'object';
    default: return actual === schema.type;
  }
}

function show(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : JSON.stringify(value) ?? String(value);
}

class Checker {
  readonly causes: StatusCause[] = [];
  /** Paths of fields removed because the schema does not declare them. */
  readonly pruned: string[] = [];

  fail(field: string, reason: string, message: string): void {
    this.causes.push({ reason, message, field });
  }

  /** Validates `value` at `field`, pruning and defaulting in place; returns the (possibly replaced) value. */
  check(schema: Schema, value: unknown, field: string, root = false): unknown {
    if (value === null && schema.nullable === true) return value;
    if (!typeMatches(schema, value)) {
      const expected = schema['x-kubernetes-int-or-string'] === true ? 'integer or string' : schema.type;
      this.fail(field, 'FieldValueTypeInvalid', `Invalid value: "${typeName(value)}": ${field} in body must be of type ${expected}: "${typeName(value)}"`);
      return value;
    }
    this.checkValue(schema, value, field);
    this.checkCombinators(schema, value, field);
    if (Array.isArray(value)) return this.checkArray(schema, value, field);
    if (isJsonObject(value)) return this.checkObject(schema, value, field, root);
    return value;
  }

  private checkValue(schema: Schema, value: unknown, field: string): void {
    if (schema.enum !== undefined && !schema.enum.some((allowed) => jsonEqual(allowed, value))) {
      this.fail(field, 'FieldValueNotSupported', `Unsupported value: ${show(value)}: supported values: ${schema.enum.map(show).join(', ')}`);
    }
    if (typeof value === 'string') this.checkString(schema, value, field);
    if (typeof value === 'number') this.checkNumber(schema, value, field);
  }

  private checkString(schema: Schema, value: string, field: string): void {
    if (schema.minLength !== undefined && value.length < schema.minLength) {
      this.fail(field, 'FieldValueInvalid', `Invalid value: ${show(value)}: ${field} in body should be at least ${schema.minLength} chars long`);
    }
    if (schema.maxLength !== undefined && value.length > schema.maxLength) {
      this.fail(field, 'FieldValueTooLong', `Too long: may not be more than ${schema.maxLength} bytes`);
    }
    if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(value)) {
      this.fail(field, 'FieldValueInvalid', `Invalid value: ${show(value)}: ${field} in body should match '${schema.pattern}'`);
    }
    if (schema.format === 'date-time' && Number.isNaN(Date.parse(value))) {
      this.fail(field, 'FieldValueInvalid', `Invalid value: ${show(value)}: ${field} in body must be of type date-time: ${show(value)}`);
    }
  }

  private checkNumber(schema: Schema, value: number, field: string): void {
    if (schema.minimum !== undefined && (schema.exclusiveMinimum === true ? value <= schema.minimum : value < schema.minimum)) {
      this.fail(field, 'FieldValueInvalid', `Invalid value: ${value}: ${field} in body should be greater than or equal to ${schema.minimum}`);
    }
    if (schema.maximum !== undefined && (schema.exclusiveMaximum === true ? value >= schema.maximum : value > schema.maximum)) {
      this.fail(field, 'FieldValueInvalid', `Invalid value: ${value}: ${field} in body should be less than or equal to ${schema.maximum}`);
    }
  }

  private checkCombinators(schema: Schema, value: unknown, field: string): void {
    const passes = (sub: Schema): boolean => {
      const probe = new Checker();
      probe.check(sub, clone(value), field);
      return probe.causes.length === 0;
    };
    for (const sub of schema.allOf ?? []) if (!passes(sub)) this.fail(field, 'FieldValueInvalid', `Invalid value: ${show(value)}: ${field} in body must match all schemas in allOf`);
    if (schema.anyOf !== undefined && !schema.anyOf.some(passes)) this.fail(field, 'FieldValueInvalid', `Invalid value: ${show(value)}: ${field} in body must match at least one schema in anyOf`);
    if (schema.oneOf !== undefined && schema.oneOf.filter(passes).length !== 1) this.fail(field, 'FieldValueInvalid', `Invalid value: ${show(value)}: ${field} in body must match exactly one schema in oneOf`);
    if (schema.not !== undefined && passes(schema.not)) this.fail(field, 'FieldValueInvalid', `Invalid value: ${show(value)}: ${field} in body must not match the schema in not`);
  }

  private checkArray(schema: Schema, value: unknown[], field: string): unknown[] {
    if (schema.minItems !== undefined && value.length < schema.minItems) this.fail(field, 'FieldValueInvalid', `Invalid value: ${value.length}: ${field} in body should have at least ${schema.minItems} items`);
    if (schema.maxItems !== undefined && value.length > schema.maxItems) this.fail(field, 'FieldValueTooMany', `Too many: ${value.length}: must have at most ${schema.maxItems} items`);
    if (schema['x-kubernetes-list-type'] === 'set') {
      value.forEach((item, index) => {
        if (value.findIndex((other) => jsonEqual(other, item)) !== index) this.fail(`${field}[${index}]`, 'FieldValueDuplicate', `Duplicate value: ${show(item)}`);
      });
    }
    return schema.items === undefined ? value : value.map((item, index) => this.check(schema.items!, item, `${field}[${index}]`));
  }

  private checkObject(schema: Schema, value: Record<string, unknown>, field: string, root: boolean): Record<string, unknown> {
    const properties = schema.properties ?? {};
    for (const [name, sub] of Object.entries(properties)) {
      if (value[name] === undefined && sub.default !== undefined) value[name] = clone(sub.default);
    }
    for (const name of schema.required ?? []) {
      if (value[name] === undefined) this.fail(join(field, name), 'FieldValueRequired', 'Required value');
    }
    const count = Object.keys(value).length;
    if (schema.minProperties !== undefined && count < schema.minProperties) this.fail(field, 'FieldValueInvalid', `Invalid value: ${count}: ${field} in body should have at least ${schema.minProperties} properties`);
    if (schema.maxProperties !== undefined && count > schema.maxProperties) this.fail(field, 'FieldValueTooMany', `Too many: ${count}: must have at most ${schema.maxProperties} items`);
    const preserve = schema['x-kubernetes-preserve-unknown-fields'] === true;
    const embedded = schema['x-kubernetes-embedded-resource'] === true;
    for (const [name, child] of Object.entries(value)) {
      const childField = join(field, name);
      if ((root || embedded) && ROOT_FIELDS.has(name) && properties[name] === undefined) continue;
      if (properties[name] !== undefined) value[name] = this.check(properties[name], child, childField);
      else if (isJsonObject(schema.additionalProperties)) value[name] = this.check(schema.additionalProperties, child, childField);
      else if (schema.additionalProperties === true || preserve) continue;
      else {
        this.pruned.push(childField);
        delete value[name];
      }
    }
    return value;
  }
}

function join(field: string, name: string): string {
  return field === '' ? name : `${field}.${name}`;
}

export interface SchemaResult {
  /** The object with unknown fields pruned and defaults applied. */
  readonly object: Record<string, unknown>;
  readonly causes: StatusCause[];
  /** Unknown fields that were pruned; fieldValidation=Strict rejects them. */
  readonly unknownFields: string[];
}

/** Validates a whole custom resource; `metadata` is not checked against the schema (the server owns it). */
export function validateCustomResource(schema: Schema, object: Record<string, unknown>): SchemaResult {
  const checker = new Checker();
  const copy = clone(object);
  const metadata = copy.metadata;
  delete copy.metadata;
  const rootSchema: Schema = { ...schema, properties: { ...schema.properties } };
  delete rootSchema.properties!.metadata;
  const result = checker.check(rootSchema, copy, '', true) as Record<string, unknown>;
  if (metadata !== undefined) result.metadata = metadata;
  return { object: result, causes: checker.causes, unknownFields: checker.pruned };
}

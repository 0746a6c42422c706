// The schema of built-in kinds, taken from the Kubernetes v1.34 models that @kubernetes/client-node
// generates from the real OpenAPI document: which fields exist, their types, and which are required.
// The loopback API server checks every built-in object against it (as the real server decodes into Go
// structs), and charts/testing checks rendered manifests with the same walk.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as k8s from '@kubernetes/client-node';

interface Attribute {
  readonly name: string;
  readonly baseName: string;
  readonly type: string;
  readonly format: string;
}

interface ModelClass {
  getAttributeTypeMap(): Attribute[];
}

/** What is wrong with one field: unknown (not in the model), a wrong type, or a required field missing. */
export interface SchemaProblem {
  readonly kind: 'unknown' | 'type' | 'required';
  /** `.spec.template.spec.containers[0].image`, as the strict decoder prints it (with a leading dot). */
  readonly path: string;
  readonly message: string;
  /** For type problems: the Go decoder's view (`Probe.spec.….periodSeconds`, `int32`, `string`). */
  readonly goField?: string;
  readonly goType?: string;
  readonly jsonType?: string;
}

export interface SchemaCheck {
  readonly problems: SchemaProblem[];
  /** The object without unknown fields (what the real server stores under Warn or Ignore). */
  readonly pruned: unknown;
}

/** The client-node model of a built-in kind, by apiVersion then kind. */
const MODELS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  v1: {
    Namespace: 'V1Namespace', Pod: 'V1Pod', Service: 'V1Service', ServiceAccount: 'V1ServiceAccount', Secret: 'V1Secret',
    ConfigMap: 'V1ConfigMap', Event: 'CoreV1Event', Endpoints: 'V1Endpoints', ResourceQuota: 'V1ResourceQuota',
    LimitRange: 'V1LimitRange', PersistentVolumeClaim: 'V1PersistentVolumeClaim', PersistentVolume: 'V1PersistentVolume',
  },
  'apps/v1': { Deployment: 'V1Deployment', StatefulSet: 'V1StatefulSet', DaemonSet: 'V1DaemonSet', ReplicaSet: 'V1ReplicaSet' },
  'batch/v1': { Job: 'V1Job', CronJob: 'V1CronJob' },
  'policy/v1': { PodDisruptionBudget: 'V1PodDisruptionBudget' },
  'autoscaling/v2': { HorizontalPodAutoscaler: 'V2HorizontalPodAutoscaler' },
  'autoscaling/v1': { HorizontalPodAutoscaler: 'V1HorizontalPodAutoscaler' },
  'networking.k8s.io/v1': { NetworkPolicy: 'V1NetworkPolicy', Ingress: 'V1Ingress', IngressClass: 'V1IngressClass' },
  'discovery.k8s.io/v1': { EndpointSlice: 'V1EndpointSlice' },
  'events.k8s.io/v1': { Event: 'EventsV1Event' },
  'coordination.k8s.io/v1': { Lease: 'V1Lease' },
  'scheduling.k8s.io/v1': { PriorityClass: 'V1PriorityClass' },
  'storage.k8s.io/v1': { StorageClass: 'V1StorageClass' },
  'rbac.authorization.k8s.io/v1': { Role: 'V1Role', RoleBinding: 'V1RoleBinding', ClusterRole: 'V1ClusterRole', ClusterRoleBinding: 'V1ClusterRoleBinding' },
  'admissionregistration.k8s.io/v1': {
    MutatingWebhookConfiguration: 'V1MutatingWebhookConfiguration', ValidatingWebhookConfiguration: 'V1ValidatingWebhookConfiguration',
  },
  'apiextensions.k8s.io/v1': { CustomResourceDefinition: 'V1CustomResourceDefinition' },
};

/** The model name for apiVersion + kind, or undefined when the kind has no built-in schema here. */
export function builtinModel(apiVersion: string, kind: string): string | undefined {
  return Object.hasOwn(MODELS, apiVersion) && Object.hasOwn(MODELS[apiVersion], kind) ? MODELS[apiVersion][kind] : undefined;
}

/** The apiVersions that define a kind, in the order above (the preferred one first). */
export function builtinApiVersionsOf(kind: string): string[] {
  return Object.keys(MODELS).filter((apiVersion) => Object.hasOwn(MODELS[apiVersion], kind));
}

const modelsDir = join(dirname(createRequire(import.meta.url).resolve('@kubernetes/client-node')), 'gen', 'models');
const requiredCache = new Map<string, Set<string>>();
const declarationCache = new Map<string, string>();

function declarationOf(model: string): string {
  let declaration = declarationCache.get(model);
  if (declaration === undefined) {
    declaration = readFileSync(join(modelsDir, `${model}.d.ts`), 'utf8');
    declarationCache.set(model, declaration);
  }
  return declaration;
}

/** Required properties are the ones the generated declaration does not mark optional (`'name': T;`). */
function requiredOf(model: string): Set<string> {
  let required = requiredCache.get(model);
  if (!required) {
    required = new Set([...declarationOf(model).matchAll(/^\s+'([A-Za-z0-9$_-]+)': /gm)].map((match) => match[1]));
    requiredCache.set(model, required);
  }
  return required;
}

function modelClass(name: string): ModelClass | undefined {
  const candidate = (k8s as unknown as Record<string, unknown>)[name];
  return typeof candidate === 'function' && 'getAttributeTypeMap' in candidate ? (candidate as unknown as ModelClass) : undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Quantities are int-or-string in the API although the generated models say string. */
const QUANTITY_MAPS = new Set(['limits', 'requests', 'hard', 'used', 'capacity', 'allocatable', 'overhead', 'default', 'defaultRequest', 'max', 'min', 'maxLimitRequestRatio']);
const QUANTITY_FIELDS = new Set(['V1EmptyDirVolumeSource.sizeLimit', 'V1ResourceFieldSelector.divisor', 'V2MetricTarget.value', 'V2MetricTarget.averageValue']);

function jsonTypeOf(value: unknown): string {
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'object') return 'object';
  return typeof value === 'boolean' ? 'bool' : typeof value;
}

function goTypeOf(type: string, format: string): string {
  if (type === 'number') return format === 'double' ? 'float64' : format === '' ? 'int' : format;
  if (type === 'boolean') return 'bool';
  if (type === 'string' || type === 'Date' || type === 'V1MicroTime') return 'string';
  if (type.startsWith('Array<')) return `[]${goTypeOf(type.slice(6, -1), format)}`;
  if (type.startsWith('{')) return 'map[string]…';
  return goStructName(type);
}

/** `V1Probe` → `Probe`, `CoreV1Event` → `Event`: the Go struct name the real decoder prints. */
function goStructName(model: string): string {
  return model.replace(/^[A-Z][a-z]+V\d+(?:(?:alpha|beta)\d+)?(?=[A-Z])/, '').replace(/^V\d+(?:(?:alpha|beta)\d+)?(?=[A-Z])/, '');
}

/** One walk over an object: collects problems and builds the pruned copy. */
class SchemaWalker {
  readonly problems: SchemaProblem[] = [];
  /** The model whose field is being checked and the index-free path, for Go-style type errors. */
  private owner = '';
  private goPath = '';

  checkType(type: string, format: string, value: unknown, path: string, fieldName: string): unknown {
    if (type === 'any' || type === 'object') return value;
    const array = /^Array<(.+)>$/.exec(type);
    if (array) {
      if (!Array.isArray(value)) return this.typeError(path, type, format, value, 'expected an array');
      return value.map((item, index) => this.checkType(array[1], format, item, `${path}[${index}]`, fieldName));
    }
    const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
    if (map) {
      if (!isObject(value)) return this.typeError(path, type, format, value, 'expected a map');
      const out: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(value)) {
        out[key] = map[1] === 'string' && QUANTITY_MAPS.has(fieldName) && typeof item === 'number' ? item : this.checkType(map[1], format, item, `${path}.${key}`, key);
      }
      return out;
    }
    switch (type) {
      case 'string':
        if (typeof value === 'number' && QUANTITY_FIELDS.has(`${this.owner}.${fieldName}`)) return value;
        return typeof value === 'string' ? value : this.typeError(path, type, format, value, 'expected a string');
      case 'boolean': return typeof value === 'boolean' ? value : this.typeError(path, type, format, value, 'expected a boolean');
      case 'Date': case 'V1MicroTime': return typeof value === 'string' ? value : this.typeError(path, type, format, value, 'expected a date-time string');
      case 'number':
        if (typeof value !== 'number') return this.typeError(path, type, format, value, 'expected a number');
        if (format.startsWith('int') && !Number.isInteger(value)) return this.typeError(path, type, format, value, 'expected an integer');
        return value;
      case 'IntOrString':
        return typeof value === 'string' || Number.isInteger(value) ? value : this.typeError(path, type, format, value, 'expected an integer or a string');
      default:
        return this.checkModel(type, value, path);
    }
  }

  checkModel(model: string, value: unknown, path: string): unknown {
    const cls = modelClass(model);
    if (!cls) {
      this.problems.push({ kind: 'type', path, message: `no schema for type ${model}` });
      return value;
    }
    if (!isObject(value)) return this.typeError(path, model, '', value, `expected an object (${model})`);
    const attributes = new Map(cls.getAttributeTypeMap().map((attribute) => [attribute.baseName, attribute]));
    const out: Record<string, unknown> = {};
    const [outerOwner, outerGoPath] = [this.owner, this.goPath];
    for (const [key, item] of Object.entries(value)) {
      // An undefined property is absent on the wire (JSON.stringify drops it).
      if (item === undefined) continue;
      const attribute = attributes.get(key);
      if (!attribute) {
        this.problems.push({ kind: 'unknown', path: `${path}.${key}`, message: `unknown field (not in ${model})` });
        continue;
      }
      this.owner = model;
      this.goPath = outerGoPath === '' ? key : `${outerGoPath}.${key}`;
      out[key] = item === null ? null : this.checkType(attribute.type, attribute.format, item, `${path}.${key}`, key);
    }
    [this.owner, this.goPath] = [outerOwner, outerGoPath];
    for (const required of requiredOf(model)) {
      const baseName = [...attributes.values()].find((attribute) => attribute.name === required)?.baseName ?? required;
      if (!(baseName in value)) this.problems.push({ kind: 'required', path: `${path}.${baseName}`, message: `required field missing (${model})` });
    }
    return out;
  }

  private typeError(path: string, type: string, format: string, value: unknown, expected: string): unknown {
    const shown = typeof value === 'number' && expected === 'expected an integer' ? String(value) : JSON.stringify(value);
    this.problems.push({
      kind: 'type', path, message: `${expected}, got ${shown}`,
      goField: `${goStructName(this.owner)}.${this.goPath}`, goType: goTypeOf(type, format), jsonType: jsonTypeOf(value),
    });
    return value;
  }
}

/** Checks a whole object against the model of its kind (see builtinModel). */
export function checkBuiltinObject(model: string, object: unknown): SchemaCheck {
  const walker = new SchemaWalker();
  const pruned = walker.checkModel(model, object, '');
  return { problems: walker.problems, pruned };
}

type OpenApiSchema = Record<string, unknown>;

const INT_OR_STRING = 'io.k8s.apimachinery.pkg.util.intstr.IntOrString';

/** `V1DeploymentSpec` → `io.k8s.api.v1.DeploymentSpec`, `CoreV1EndpointPort` → `io.k8s.api.core.v1.EndpointPort`. */
function componentName(model: string): string {
  const match = /^([A-Z][a-z]+)?(V\d+(?:alpha\d+|beta\d+)?)([A-Z].*)$/.exec(model);
  if (match === null) return `io.k8s.api.${model}`;
  return `io.k8s.api.${match[1] === undefined ? '' : `${match[1].toLowerCase()}.`}${match[2].toLowerCase()}.${match[3]}`;
}

/** The doc comments of a generated declaration: the class's (key '') and each property's. */
function descriptionsOf(model: string): Map<string, string> {
  const descriptions = new Map<string, string>();
  const clean = (comment: string): string => comment.split('\n').map((line) => line.replace(/^\s*\*\s?/, '').trim()).filter((line) => line !== '').join(' ');
  for (const match of declarationOf(model).matchAll(/\/\*\*((?:[^*]|\*(?!\/))*)\*\/\s*(?:export declare class|'([^']+)'\??:)/g)) {
    descriptions.set(match[2] ?? '', clean(match[1]));
  }
  return descriptions;
}

/** Adds the OpenAPI v3 component of a model, and of every model it uses, to `components`; returns its name. */
function addOpenApiComponents(model: string, components: Record<string, OpenApiSchema>): string {
  const name = componentName(model);
  if (Object.hasOwn(components, name)) return name;
  const cls = modelClass(model);
  const descriptions = descriptionsOf(model);
  const schema: OpenApiSchema = { type: 'object', description: descriptions.get('') ?? '' };
  // Set before recursing: models refer to themselves (JSONSchemaProps) and to each other.
  components[name] = schema;
  const properties: Record<string, OpenApiSchema> = {};
  for (const attribute of cls?.getAttributeTypeMap() ?? []) {
    const description = descriptions.get(attribute.name) ?? descriptions.get(attribute.baseName);
    properties[attribute.baseName] = { ...openApiType(attribute.type, attribute.format, components), ...(description === undefined ? {} : { description }) };
  }
  schema.properties = properties;
  const attributes = cls?.getAttributeTypeMap() ?? [];
  const required = [...requiredOf(model)].map((property) => attributes.find((attribute) => attribute.name === property)?.baseName ?? property);
  if (required.length > 0) schema.required = required;
  return name;
}

const closureCache = new Map<string, { root: string; components: Readonly<Record<string, OpenApiSchema>> }>();

/** A model's component and every component it uses, computed once per model (documents are rebuilt per request). */
export function openApiComponentsOf(model: string): { root: string; components: Readonly<Record<string, OpenApiSchema>> } {
  let closure = closureCache.get(model);
  if (closure === undefined) {
    const components: Record<string, OpenApiSchema> = {};
    closure = { root: addOpenApiComponents(model, components), components };
    closureCache.set(model, closure);
  }
  return closure;
}

function openApiType(type: string, format: string, components: Record<string, OpenApiSchema>): OpenApiSchema {
  if (type === 'any' || type === 'object') return { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
  const array = /^Array<(.+)>$/.exec(type);
  if (array) return { type: 'array', items: openApiType(array[1], format, components) };
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) return { type: 'object', additionalProperties: openApiType(map[1], format, components) };
  switch (type) {
    case 'string': return format === '' ? { type: 'string' } : { type: 'string', format };
    case 'boolean': return { type: 'boolean' };
    case 'number': return format.startsWith('int') ? { type: 'integer', format } : { type: 'number', format: format === '' ? 'double' : format };
    case 'Date': case 'V1MicroTime': return { type: 'string', format: 'date-time' };
    case 'IntOrString':
      components[INT_OR_STRING] ??= { type: 'string', format: 'int-or-string', description: 'IntOrString is a type that can hold an int32 or a string.' };
      return { allOf: [{ $ref: `#/components/schemas/${INT_OR_STRING}` }] };
    default:
      return { default: {}, allOf: [{ $ref: `#/components/schemas/${addOpenApiComponents(type, components)}` }] };
  }
}

// Validates manifests against the Kubernetes API schema as @kubernetes/client-node generates it from
// the v1.34 OpenAPI document: every field must exist in the model of its kind (no typos, no fields at
// the wrong level), have the model's type, and every required field must be present. This is for the
// built-in kinds the loopback API server stores without checking (it validates CRD kinds only).
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

/** apiVersion per kind, and the client-node model of each. */
const KINDS: Readonly<Record<string, { apiVersion: string; model: string }>> = {
  Namespace: { apiVersion: 'v1', model: 'V1Namespace' },
  ServiceAccount: { apiVersion: 'v1', model: 'V1ServiceAccount' },
  Service: { apiVersion: 'v1', model: 'V1Service' },
  ConfigMap: { apiVersion: 'v1', model: 'V1ConfigMap' },
  Secret: { apiVersion: 'v1', model: 'V1Secret' },
  Deployment: { apiVersion: 'apps/v1', model: 'V1Deployment' },
  PodDisruptionBudget: { apiVersion: 'policy/v1', model: 'V1PodDisruptionBudget' },
  ClusterRole: { apiVersion: 'rbac.authorization.k8s.io/v1', model: 'V1ClusterRole' },
  ClusterRoleBinding: { apiVersion: 'rbac.authorization.k8s.io/v1', model: 'V1ClusterRoleBinding' },
  Role: { apiVersion: 'rbac.authorization.k8s.io/v1', model: 'V1Role' },
  RoleBinding: { apiVersion: 'rbac.authorization.k8s.io/v1', model: 'V1RoleBinding' },
  MutatingWebhookConfiguration: { apiVersion: 'admissionregistration.k8s.io/v1', model: 'V1MutatingWebhookConfiguration' },
  ValidatingWebhookConfiguration: { apiVersion: 'admissionregistration.k8s.io/v1', model: 'V1ValidatingWebhookConfiguration' },
  CustomResourceDefinition: { apiVersion: 'apiextensions.k8s.io/v1', model: 'V1CustomResourceDefinition' },
};

export function isBuiltinKind(kind: string): boolean {
  return kind in KINDS;
}

const modelsDir = join(dirname(createRequire(import.meta.url).resolve('@kubernetes/client-node')), 'gen', 'models');
const requiredCache = new Map<string, Set<string>>();

/** Required properties are the ones the generated declaration does not mark optional (`'name': T;`). */
function requiredOf(model: string): Set<string> {
  let required = requiredCache.get(model);
  if (!required) {
    const declaration = readFileSync(join(modelsDir, `${model}.d.ts`), 'utf8');
    required = new Set([...declaration.matchAll(/^\s+'([A-Za-z0-9$_-]+)': /gm)].map((match) => match[1]));
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
const QUANTITY_MAPS = new Set(['limits', 'requests']);

class SchemaWalker {
  readonly problems: string[] = [];

  checkType(type: string, format: string, value: unknown, path: string, fieldName: string): void {
    if (type === 'any' || type === 'object') return;
    const array = /^Array<(.+)>$/.exec(type);
    if (array) {
      if (!Array.isArray(value)) return this.fail(path, `expected an array, got ${JSON.stringify(value)}`);
      value.forEach((item, index) => this.checkType(array[1], '', item, `${path}[${index}]`, fieldName));
      return;
    }
    const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
    if (map) {
      if (!isObject(value)) return this.fail(path, 'expected a map');
      for (const [key, item] of Object.entries(value)) {
        if (map[1] === 'string' && QUANTITY_MAPS.has(fieldName) && typeof item === 'number') continue;
        this.checkType(map[1], '', item, `${path}.${key}`, key);
      }
      return;
    }
    switch (type) {
      case 'string': return void (typeof value !== 'string' && this.fail(path, `expected a string, got ${JSON.stringify(value)}`));
      case 'boolean': return void (typeof value !== 'boolean' && this.fail(path, `expected a boolean, got ${JSON.stringify(value)}`));
      case 'Date': return void (typeof value !== 'string' && this.fail(path, 'expected a date-time string'));
      case 'number':
        if (typeof value !== 'number') return this.fail(path, `expected a number, got ${JSON.stringify(value)}`);
        if (format.startsWith('int') && !Number.isInteger(value)) this.fail(path, `expected an integer, got ${value}`);
        return;
      case 'IntOrString':
        if (!(typeof value === 'string' || Number.isInteger(value))) this.fail(path, `expected an integer or a string, got ${JSON.stringify(value)}`);
        return;
      default:
        return this.checkModel(type, value, path);
    }
  }

  checkModel(model: string, value: unknown, path: string): void {
    const cls = modelClass(model);
    if (!cls) return this.fail(path, `no schema for type ${model}`);
    if (!isObject(value)) return this.fail(path, `expected an object (${model})`);
    const attributes = new Map(cls.getAttributeTypeMap().map((attribute) => [attribute.baseName, attribute]));
    for (const [key, item] of Object.entries(value)) {
      const attribute = attributes.get(key);
      if (!attribute) {
        this.fail(`${path}.${key}`, `unknown field (not in ${model})`);
        continue;
      }
      if (item === null) continue;
      this.checkType(attribute.type, attribute.format, item, `${path}.${key}`, key);
    }
    for (const required of requiredOf(model)) {
      const baseName = [...attributes.values()].find((attribute) => attribute.name === required)?.baseName ?? required;
      if (!(baseName in value)) this.fail(`${path}.${baseName}`, `required field missing (${model})`);
    }
  }

  private fail(path: string, message: string): void {
    this.problems.push(`${path}: ${message}`);
  }
}

/** Problems of one manifest, each as `Kind/name field.path: message`; empty when it is valid. */
export function validateBuiltinManifest(manifest: unknown): string[] {
  if (!isObject(manifest)) return ['manifest: not an object'];
  const kind = String(manifest.kind);
  const name = isObject(manifest.metadata) ? String(manifest.metadata.name) : '?';
  const known = KINDS[kind];
  if (!known) return [`${kind}/${name}: not a built-in kind this validator knows`];
  if (manifest.apiVersion !== known.apiVersion) return [`${kind}/${name}: apiVersion ${String(manifest.apiVersion)}, expected ${known.apiVersion}`];
  const walker = new SchemaWalker();
  walker.checkModel(known.model, manifest, '');
  if (!isObject(manifest.metadata) || typeof manifest.metadata.name !== 'string') walker.problems.push('.metadata.name: required');
  return walker.problems.map((problem) => `${kind}/${name} ${problem}`);
}

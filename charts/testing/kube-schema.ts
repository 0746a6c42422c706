// Validates manifests against the Kubernetes API schema as @kubernetes/client-node generates it from
// the v1.34 OpenAPI document: every field must exist in the model of its kind (no typos, no fields at
// the wrong level), have the model's type, and every required field must be present. The walk itself
// lives in e2e/apiserver/builtin-schema.ts, which the loopback API server applies to every write.
import { builtinApiVersionsOf, builtinModel, checkBuiltinObject } from '../../e2e/apiserver/builtin-schema.js';

export function isBuiltinKind(kind: string): boolean {
  return builtinApiVersionsOf(kind).length > 0;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Problems of one manifest, each as `Kind/name field.path: message`; empty when it is valid. */
export function validateBuiltinManifest(manifest: unknown): string[] {
  if (!isObject(manifest)) return ['manifest: not an object'];
  const kind = String(manifest.kind);
  const name = isObject(manifest.metadata) ? String(manifest.metadata.name) : '?';
  const apiVersions = builtinApiVersionsOf(kind);
  if (apiVersions.length === 0) return [`${kind}/${name}: not a built-in kind this validator knows`];
  const model = builtinModel(String(manifest.apiVersion), kind);
  if (model === undefined) return [`${kind}/${name}: apiVersion ${String(manifest.apiVersion)}, expected ${apiVersions.join(' or ')}`];
  const problems = checkBuiltinObject(model, manifest).problems.map((problem) => `${problem.path}: ${problem.message}`);
  if (!isObject(manifest.metadata) || typeof manifest.metadata.name !== 'string') problems.push('.metadata.name: required');
  return problems.map((problem) => `${kind}/${name} ${problem}`);
}

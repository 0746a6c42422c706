// The verbs on stored resources — get, list, create, update, patch, delete, deletecollection — with the
// real request semantics around storage: namespace checks, generateName, status subresource splitting,
// admission (mutating → schema → validating), built-in decoding against the Kubernetes schema, CRD
// schema validation and pruning, managedFields.
import { randomBytes } from 'node:crypto';
import { AdmissionChain, type AdmissionOperation, type AdmissionUser } from './admission.js';
import { ApiStatusError, badRequest, invalid, notFound } from './api-status.js';
import { createDefaults, normalizeOnWrite, withNamespaceNameLabel } from './builtin-defaults.js';
import { builtinModel, checkBuiltinObject } from './builtin-schema.js';
import { clone, isJsonObject, type JsonObject, type KubeObject } from './objects.js';
import type { ObjectStore } from './object-store.js';
import { applyJsonPatch, applyMergePatch, applyServerSideApply, applyStrategicMergePatch, fieldsV1Of, type PatchType } from './patch.js';
import type { ResourceTarget } from './request-target.js';
import { apiVersionOf, type ResourceType } from './resource-types.js';
import { validateCustomResource, type Schema } from './schema-validation.js';
import { parseFieldSelector, parseLabelSelector } from './selectors.js';

export interface RequestContext {
  readonly target: ResourceTarget;
  readonly query: URLSearchParams;
  readonly user: AdmissionUser;
  /** Default field manager derived from the user agent, as the real server does. */
  readonly userAgentManager: string;
  /** Warnings for the response's Warning headers (unknown fields under fieldValidation=Warn). */
  readonly warnings?: string[];
}

/** Called after a committed write, so CRDs can start or stop serving their type. */
export type WriteObserver = (type: ResourceType, object: KubeObject, deleted: boolean) => void;

export interface ResourceApiHooks {
  /** Extra validation of a type before it is stored (CRDs are checked here); throws a Status error. */
  beforeWrite?(type: ResourceType, object: KubeObject): KubeObject;
  afterWrite?: WriteObserver;
}

interface ListResult {
  apiVersion: string;
  kind: string;
  metadata: { resourceVersion: string; continue?: string; remainingItemCount?: number };
  items: KubeObject[];
}

const now = (): string => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

function nameSuffix(): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  return [...randomBytes(5)].map((byte) => alphabet[byte % alphabet.length]).join('');
}

export class ResourceApi {
  constructor(
    private readonly store: ObjectStore,
    private readonly admission: AdmissionChain,
    private readonly hooks: ResourceApiHooks = {},
  ) {}

  /** Sets apiVersion and kind to the version the client asked for (objects are stored once). */
  present(target: ResourceTarget, object: KubeObject): KubeObject {
    return { apiVersion: apiVersionOf(target.type.group, target.version), kind: target.type.kind, ...withoutTypeMeta(object) };
  }

  get(context: RequestContext): KubeObject {
    const { target } = context;
    const object = this.store.get(target.type, target.namespace, target.name!);
    if (object === undefined) throw notFound(target.type, target.name!);
    return this.present(target, object);
  }

  list(context: RequestContext): ListResult {
    const { target, query } = context;
    const labels = parseLabelSelector(query.get('labelSelector'));
    const fields = parseFieldSelector(query.get('fieldSelector'));
    let items = this.store.list(target.type, target.namespace).filter((object) => labels(object) && fields(object));
    const resourceVersion = String(this.store.currentResourceVersion);
    const after = decodeContinue(query.get('continue'));
    if (after !== undefined) items = items.filter((object) => keyOf(object) > after);
    const limit = Number(query.get('limit') ?? '0');
    const metadata: ListResult['metadata'] = { resourceVersion };
    if (limit > 0 && items.length > limit) {
      metadata.remainingItemCount = items.length - limit;
      items = items.slice(0, limit);
      metadata.continue = Buffer.from(JSON.stringify({ v: 'meta.k8s.io/v1', rv: Number(resourceVersion), start: keyOf(items[items.length - 1]) })).toString('base64');
    }
    const kind = `${target.type.kind}List`;
    return { apiVersion: apiVersionOf(target.type.group, target.version), kind, metadata, items: items.map((item) => this.present(target, item)) };
  }

  async create(context: RequestContext, body: unknown, operation: 'Apply' | 'Update' = 'Update'): Promise<KubeObject> {
    const { target } = context;
    const input = this.checkBody(target, body);
    if (target.namespace !== undefined) {
      if (input.metadata.namespace !== undefined && input.metadata.namespace !== target.namespace) {
        throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
      }
      input.metadata.namespace = target.namespace;
    } else if (target.type.namespaced) throw new ApiStatusError(404, 'NotFound', 'the server could not find the requested resource');
    if (input.metadata.name === undefined || input.metadata.name === '') {
      if (input.metadata.generateName === undefined || input.metadata.generateName === '') {
        throw invalid(target.type, '', [{ reason: 'FieldValueRequired', message: 'Required value: name or generateName is required', field: 'metadata.name' }]);
      }
      input.metadata.name = `${input.metadata.generateName}${nameSuffix()}`;
    }
    this.checkNamespaceOpen(target.type, input.metadata.namespace);
    const prepared = normalizeOnWrite(target.type, createDefaults(target.type, input));
    this.addManagedFields(prepared, context, operation, body);
    const admitted = await this.admit(context, 'CREATE', prepared, undefined);
    const stored = this.store.create(target.type, admitted, { dryRun: isDryRun(context.query) });
    if (!isDryRun(context.query)) this.hooks.afterWrite?.(target.type, stored, false);
    return this.present(target, stored);
  }

  async update(context: RequestContext, body: unknown): Promise<KubeObject> {
    const { target } = context;
    const input = this.checkBody(target, body);
    if (input.metadata.name !== undefined && input.metadata.name !== target.name) {
      throw badRequest(`the name of the object (${input.metadata.name}) does not match the name on the URL (${target.name})`);
    }
    const old = this.store.get(target.type, target.namespace, target.name!);
    if (old === undefined) throw notFound(target.type, target.name!);
    input.metadata = { ...input.metadata, name: target.name, namespace: old.metadata.namespace };
    this.addManagedFields(input, context, 'Update', body);
    return this.write(context, old, input);
  }

  async patch(context: RequestContext, patchType: PatchType, patch: unknown): Promise<{ object: KubeObject; created: boolean }> {
    const { target } = context;
    const old = this.store.get(target.type, target.namespace, target.name!);
    if (patchType === 'apply' && (context.query.get('fieldManager') ?? '') === '') {
      throw badRequest('PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch');
    }
    if (old === undefined) {
      if (patchType !== 'apply' || target.subresource !== undefined) throw notFound(target.type, target.name!);
      return { object: await this.create(context, withName(patch, target), 'Apply'), created: true };
    }
    const base = this.present(target, old);
    let patched: unknown;
    switch (patchType) {
      case 'json': patched = applyJsonPatch(base, patch); break;
      case 'merge': patched = applyMergePatch(base, patch); break;
      case 'strategic':
        // CRDs have no patch strategies; the real server refuses strategic merge for them.
        if (target.type.crdName !== undefined) throw new ApiStatusError(415, 'UnsupportedMediaType', 'strategic merge patch is not supported for custom resources; use merge or json patch');
        patched = applyStrategicMergePatch(base, patch);
        break;
      case 'apply': {
        const manager = context.query.get('fieldManager')!;
        const entries = (old.metadata.managedFields ?? []).filter((entry) => entry.subresource === target.subresource || (entry.subresource === undefined && target.subresource === undefined));
        const mine = entries.find((entry) => entry.manager === manager && entry.operation === 'Apply');
        const others = entries.filter((entry) => entry !== mine).map((entry) => entry.fieldsV1).filter(isJsonObject);
        patched = applyServerSideApply(base, patch, isJsonObject(mine?.fieldsV1) ? mine.fieldsV1 : undefined, others);
        break;
      }
    }
    if (!isJsonObject(patched) || !isJsonObject(patched.metadata)) throw badRequest('the patch produced an object without metadata');
    const next = patched as unknown as KubeObject;
    next.metadata.name = old.metadata.name;
    next.metadata.namespace = old.metadata.namespace;
    this.addManagedFields(next, context, patchType === 'apply' ? 'Apply' : 'Update', patch);
    return { object: await this.write(context, old, next), created: false };
  }

  /** The common tail of update and patch: status splitting, admission, schema, store. */
  private async write(context: RequestContext, old: KubeObject, input: KubeObject): Promise<KubeObject> {
    const { target } = context;
    let next = input;
    if (target.subresource === 'status') {
      // A status write changes only status (and the caller's managedFields).
      next = { ...clone(old), status: input.status, metadata: { ...old.metadata, resourceVersion: input.metadata.resourceVersion ?? old.metadata.resourceVersion, managedFields: input.metadata.managedFields } };
      if (input.status === undefined) delete next.status;
    } else if (target.type.subresources.includes('status')) {
      // With a status subresource, writes to the main resource leave status alone.
      next = { ...input, status: old.status };
      if (old.status === undefined) delete next.status;
    }
    if (target.type.group === '' && target.type.plural === 'namespaces') withNamespaceNameLabel(next);
    next = normalizeOnWrite(target.type, next);
    const admitted = await this.admit(context, 'UPDATE', next, old);
    const stored = this.store.update(target.type, admitted, { dryRun: isDryRun(context.query) });
    if (!isDryRun(context.query)) this.hooks.afterWrite?.(target.type, stored, this.store.get(target.type, target.namespace, target.name!) === undefined);
    return this.present(target, stored);
  }

  async delete(context: RequestContext, body: unknown): Promise<KubeObject> {
    const { target } = context;
    const old = this.store.get(target.type, target.namespace, target.name!);
    if (old === undefined) throw notFound(target.type, target.name!);
    const options = isJsonObject(body) ? body : {};
    const dryRun = isDryRun(context.query) || (Array.isArray(options.dryRun) && options.dryRun.includes('All'));
    await this.admission.validate(this.attributes(context, 'DELETE', undefined, old, dryRun));
    const preconditions = isJsonObject(options.preconditions) ? (options.preconditions as { uid?: string; resourceVersion?: string }) : undefined;
    const result = this.store.delete(target.type, target.namespace, target.name!, { dryRun, preconditions });
    if (!dryRun) this.hooks.afterWrite?.(target.type, result, this.store.get(target.type, target.namespace, target.name!) === undefined);
    return this.present(target, result);
  }

  async deleteCollection(context: RequestContext, body: unknown): Promise<ListResult> {
    const listed = this.list({ ...context, query: withoutPaging(context.query) });
    const deleted: KubeObject[] = [];
    for (const item of listed.items) {
      const itemTarget = { ...context.target, namespace: item.metadata.namespace, name: item.metadata.name };
      deleted.push(await this.delete({ ...context, target: itemTarget }, body));
    }
    return { ...listed, items: deleted };
  }

  private checkBody(target: ResourceTarget, body: unknown): KubeObject {
    if (!isJsonObject(body)) throw badRequest('the request body must be a JSON object');
    const object = clone(body) as unknown as KubeObject;
    if (!isJsonObject(object.metadata)) object.metadata = {};
    const expected = apiVersionOf(target.type.group, target.version);
    if (typeof object.kind === 'string' && object.kind !== target.type.kind && target.subresource === undefined) {
      throw badRequest(`the API version in the data (${String(object.apiVersion)}) does not match the expected API version (${expected})`);
    }
    return object;
  }

  private checkNamespaceOpen(type: ResourceType, namespace: string | undefined): void {
    if (!type.namespaced || namespace === undefined) return;
    const found = this.store.namespace(namespace);
    if (found === undefined) throw new ApiStatusError(404, 'NotFound', `namespaces "${namespace}" not found`, { name: namespace, kind: 'namespaces' });
    if (found.metadata.deletionTimestamp !== undefined) {
      throw new ApiStatusError(403, 'Forbidden', `${type.plural} is forbidden: unable to create new content in namespace ${namespace} because it is being terminated`);
    }
  }

  private attributes(context: RequestContext, operation: AdmissionOperation, object: KubeObject | undefined, oldObject: KubeObject | undefined, dryRun: boolean) {
    const { target } = context;
    return {
      type: target.type, version: target.version, operation, subresource: target.subresource,
      namespace: (object ?? oldObject)?.metadata.namespace, name: (object ?? oldObject)?.metadata.name ?? '',
      object: object === undefined ? undefined : this.present(target, object),
      oldObject: oldObject === undefined ? undefined : this.present(target, oldObject),
      dryRun, userInfo: context.user,
    };
  }

  /** Mutating webhooks, then schema validation and type checks, then validating webhooks. */
  private async admit(context: RequestContext, operation: AdmissionOperation, object: KubeObject, old: KubeObject | undefined): Promise<KubeObject> {
    const dryRun = isDryRun(context.query);
    const decoded = this.decodeBuiltin(context.target, object, context.query.get('fieldValidation'), context.warnings);
    const mutated = (await this.admission.mutate(this.attributes(context, operation, decoded, old, dryRun))) ?? decoded;
    // A webhook's additions are decoded too; their unknown fields are dropped without bothering the client.
    const remade = mutated === decoded ? mutated : this.decodeBuiltin(context.target, mutated, 'Ignore', undefined);
    // Like the real namespace strategy's Canonicalize, the name label survives a webhook that drops it.
    if (context.target.type.group === '' && context.target.type.plural === 'namespaces') withNamespaceNameLabel(remade);
    const checked = this.validateSchema(context.target, remade, context.query.get('fieldValidation'), context.warnings);
    const final = this.hooks.beforeWrite?.(context.target.type, checked) ?? checked;
    await this.admission.validate(this.attributes(context, operation, final, old, dryRun));
    return final;
  }

  /**
   * What decoding into the Go types does on the real server for built-in kinds: a wrong type is a 400,
   * unknown fields are a 400 under Strict, a warning under Warn (the default) and dropped either way.
   */
  private decodeBuiltin(target: ResourceTarget, object: KubeObject, fieldValidation: string | null, warnings: string[] | undefined): KubeObject {
    if (target.type.crdName !== undefined) return object;
    const model = builtinModel(apiVersionOf(target.type.group, target.version), target.type.kind);
    if (model === undefined) return object;
    const { problems, pruned } = checkBuiltinObject(model, this.present(target, object));
    const kind = target.type.kind;
    const cannotHandle = `${kind} in version "${target.version}" cannot be handled as a ${kind}`;
    const typeError = problems.find((problem) => problem.kind === 'type');
    if (typeError !== undefined) {
      if (typeError.goField === undefined) throw new ApiStatusError(500, 'InternalError', `Internal error occurred: ${typeError.path}: ${typeError.message}`);
      throw badRequest(`${cannotHandle}: json: cannot unmarshal ${typeError.jsonType} into Go struct field ${typeError.goField} of type ${typeError.goType}`);
    }
    const unknownFields = problems.filter((problem) => problem.kind === 'unknown').map((problem) => problem.path.slice(1));
    if (fieldValidation === 'Strict' && unknownFields.length > 0) {
      throw badRequest(`${cannotHandle}: strict decoding error: ${unknownFields.map((field) => `unknown field "${field}"`).join(', ')}`);
    }
    if (fieldValidation !== 'Ignore') warnings?.push(...unknownFields.map((field) => `unknown field "${field}"`));
    // Required fields are not checked: the real server's validation differs per kind from the models' list.
    const decoded = pruned as KubeObject;
    if (object.apiVersion === undefined) delete decoded.apiVersion;
    if (object.kind === undefined) delete decoded.kind;
    return decoded;
  }

  private validateSchema(target: ResourceTarget, object: KubeObject, fieldValidation: string | null, warnings: string[] | undefined): KubeObject {
    const schema = target.type.schemas?.get(target.version);
    if (schema === undefined) return object;
    const { object: pruned, causes, unknownFields } = validateCustomResource(schema as Schema, object);
    if (causes.length > 0) throw invalid(target.type, object.metadata.name ?? '', causes);
    if (fieldValidation === 'Strict' && unknownFields.length > 0) {
      const kind = target.type.kind;
      throw badRequest(`${kind} in version "${target.version}" cannot be handled as a ${kind}: strict decoding error: ${unknownFields.map((field) => `unknown field "${field}"`).join(', ')}`);
    }
    // Warn is the server's default when the client does not say.
    if (fieldValidation !== 'Ignore') warnings?.push(...unknownFields.map((field) => `unknown field "${field}"`));
    return pruned as KubeObject;
  }

  private addManagedFields(object: KubeObject, context: RequestContext, operation: 'Apply' | 'Update', applied: unknown): void {
    const manager = context.query.get('fieldManager') ?? context.userAgentManager;
    const apiVersion = apiVersionOf(context.target.type.group, context.target.version);
    const entry = {
      manager, operation, apiVersion, time: now(), fieldsType: 'FieldsV1', fieldsV1: fieldsV1Of(applied),
      ...(context.target.subresource === undefined ? {} : { subresource: context.target.subresource }),
    };
    const others = (object.metadata.managedFields ?? []).filter((field) => !(field.manager === manager && field.operation === operation && field.subresource === entry.subresource));
    object.metadata.managedFields = [...others, entry as unknown as JsonObject];
  }
}

function withoutTypeMeta(object: KubeObject): KubeObject {
  const { apiVersion: _apiVersion, kind: _kind, ...rest } = object;
  return rest as KubeObject;
}

function withName(patch: unknown, target: ResourceTarget): unknown {
  if (!isJsonObject(patch)) throw badRequest('an apply patch must be an object');
  const metadata = isJsonObject(patch.metadata) ? patch.metadata : {};
  if (metadata.name !== undefined && metadata.name !== target.name) throw badRequest(`the name of the object (${String(metadata.name)}) does not match the name on the URL (${target.name})`);
  return { ...patch, metadata: { ...metadata, name: target.name } };
}

function keyOf(object: KubeObject): string {
  return `${object.metadata.namespace ?? ''}/${object.metadata.name}`;
}

function decodeContinue(token: string | null): string | undefined {
  if (token === null || token === '') return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64').toString('utf8')) as { start?: unknown };
    if (typeof parsed.start === 'string') return parsed.start;
  } catch {
    // fall through to the error below
  }
  throw badRequest('continue key is not valid: the continue token could not be decoded');
}

function withoutPaging(query: URLSearchParams): URLSearchParams {
  const copy = new URLSearchParams(query);
  copy.delete('limit');
  copy.delete('continue');
  return copy;
}

export function isDryRun(query: URLSearchParams): boolean {
  return query.getAll('dryRun').includes('All');
}

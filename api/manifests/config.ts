// Loads a folder of manifests (what a GitOps repo holds: Gatehouse objects, Secrets, policy tests)
// into typed objects, remembering where each came from so every problem names file, line, object
// and field path. Schema problems are collected, not thrown: one bad file never hides the others.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { LineCounter, parseAllDocuments, isMap, isNode, isScalar, type Document, type Node } from 'yaml';
import { GatehouseError, formatErrorMessage, type ErrorCode, type ErrorDetails } from '../errors.js';
import {
  API_GROUP,
  GROUP_VERSION,
  KINDS,
  type AccessPolicy,
  type GatehouseKind,
  type GatehouseObject,
  type NonHumanIdentity,
  type ObjectMeta,
  type ProtectedResource,
} from '../kinds/kinds.js';
import { checkAgainstSchema, formatFieldPath } from './schema-check.js';
import { DEFAULT_NAMESPACE, namespaceOf } from './namespace.js';

export { DEFAULT_NAMESPACE, namespaceOf };

export const POLICY_TEST_API_VERSION = 'cli.gatehouse.dev/v1alpha1';

export interface ManifestSource {
  /** Path relative to the loaded folder (or as given to loadConfigFromTexts). */
  readonly file: string;
  /** 0-based document index within the file. */
  readonly document: number;
  /** 1-based line where the document starts. */
  readonly line: number;
  /** 1-based line of a field inside the document; the nearest existing parent when absent. */
  lineOf(path: readonly (string | number)[]): number;
}

export type ProblemSeverity = 'error' | 'warning';

export interface ConfigProblem {
  readonly code: ErrorCode;
  /** Absent means error: the API server or the operator would reject or misapply the object. */
  readonly severity?: ProblemSeverity;
  readonly message: string;
  readonly file: string;
  readonly line: number;
  readonly kind?: string;
  readonly name?: string;
  readonly namespace?: string;
  /** Field path like spec.rules[0].effect; empty when the whole document is at fault. */
  readonly path: string;
}

export interface Secret {
  apiVersion: 'v1';
  kind: 'Secret';
  metadata: ObjectMeta;
  /** Decoded values: `data` (base64) and `stringData` merged as the API server does. */
  data: Record<string, string>;
}

export interface PolicyTestDocument {
  apiVersion: typeof POLICY_TEST_API_VERSION;
  kind: 'PolicyTest';
  metadata: ObjectMeta;
  spec: unknown;
}

export type ConfigObject = GatehouseObject | Secret | PolicyTestDocument;

/** Names an object without holding it: kind, namespace (defaulted) and name. */
export interface ObjectKey {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
}

export interface GatehouseConfig {
  readonly identities: NonHumanIdentity[];
  readonly resources: ProtectedResource[];
  readonly policies: AccessPolicy[];
  readonly secrets: Secret[];
  readonly policyTests: PolicyTestDocument[];
  readonly problems: ConfigProblem[];
  /** Files read, relative to the loaded folder. */
  readonly files?: readonly string[];
  /** Objects found (Gatehouse kinds, Secrets, policy tests), whether they loaded or were rejected. */
  readonly objectCount?: number;
  /**
   * Objects present but rejected for schema problems: they are not in the lists above, and the
   * validator uses this so a reference to one is not reported a second time as unknown.
   */
  readonly rejected?: readonly ObjectKey[];
  sourceOf(object: ConfigObject): ManifestSource | undefined;
}

export function isWarning(problem: ConfigProblem): boolean {
  return problem.severity === 'warning';
}

export interface ManifestText {
  readonly file: string;
  readonly text: string;
}

/** Builds a problem for `object` at `path`, with the file and line it came from. */
export function problemAt(
  config: Pick<GatehouseConfig, 'sourceOf'>,
  object: ConfigObject,
  path: readonly (string | number)[],
  code: ErrorCode,
  details: ErrorDetails = {},
): ConfigProblem {
  const source = config.sourceOf(object);
  return {
    code,
    message: formatErrorMessage(code, details),
    file: source?.file ?? '<unknown>',
    line: source?.lineOf(path) ?? 0,
    kind: object.kind,
    name: object.metadata.name,
    namespace: namespaceOf(object),
    path: formatFieldPath(path),
  };
}

async function listYamlFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const files: string[] = [];
  for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    if (entry.name.startsWith('.') || entry.name === 'node_modules') continue;
    const full = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...(await listYamlFiles(full)));
    else if (/\.ya?ml$/.test(entry.name)) files.push(full);
  }
  return files;
}

/** Reads every *.yaml / *.yml under `dir` (recursively, hidden folders skipped). */
export async function loadConfigDir(dir: string): Promise<GatehouseConfig> {
  const info = await stat(dir).catch(() => undefined);
  if (!info?.isDirectory()) throw new GatehouseError('GH_ERR_CONFIG_DIR_NOT_FOUND', { path: dir });
  const files = await listYamlFiles(dir);
  const texts = await Promise.all(
    files.map(async (file) => ({ file: relative(dir, file), text: await readFile(file, 'utf8') })),
  );
  return loadConfigFromTexts(texts);
}

class ConfigBuilder implements GatehouseConfig {
  readonly identities: NonHumanIdentity[] = [];
  readonly resources: ProtectedResource[] = [];
  readonly policies: AccessPolicy[] = [];
  readonly secrets: Secret[] = [];
  readonly policyTests: PolicyTestDocument[] = [];
  readonly problems: ConfigProblem[] = [];
  readonly files: string[] = [];
  readonly rejected: ObjectKey[] = [];
  objectCount = 0;
  private readonly sources = new WeakMap<object, ManifestSource>();

  sourceOf(object: ConfigObject): ManifestSource | undefined {
    return this.sources.get(object);
  }

  remember(object: ConfigObject, source: ManifestSource): void {
    this.sources.set(object, source);
  }

  /** Files an object loaded elsewhere (loadManifestObject) under its kind. */
  add(object: ConfigObject, source: ManifestSource): void {
    this.remember(object, source);
    switch (object.kind) {
      case 'NonHumanIdentity':
        this.identities.push(object);
        break;
      case 'ProtectedResource':
        this.resources.push(object);
        break;
      case 'AccessPolicy':
        this.policies.push(object);
        break;
      case 'Secret':
        this.secrets.push(object);
        break;
      case 'PolicyTest':
        this.policyTests.push(object);
        break;
      case 'AccessRequest':
        break;
    }
  }

  problem(source: ManifestSource, code: ErrorCode, details: ErrorDetails, extra: Partial<ConfigProblem> = {}): void {
    this.problems.push({
      code,
      message: formatErrorMessage(code, details),
      file: source.file,
      line: source.line,
      path: '',
      ...extra,
    });
  }
}

/** Pure core of the loader: manifests as text in, typed objects and problems out. */
export function loadConfigFromTexts(texts: readonly ManifestText[]): GatehouseConfig {
  const config = new ConfigBuilder();
  for (const { file, text } of texts) {
    config.files.push(file);
    loadFile(config, file, text);
  }
  reportDuplicates(config);
  return config;
}

/** An object already parsed (from the API server or an informer cache), and the name its problems give as file. */
export interface ManifestObject {
  readonly file: string;
  readonly object: unknown;
}

/**
 * One parsed object run through the loader's checks on its own. It depends on nothing else, so a
 * caller may keep it for as long as the object is unchanged and assemble configs from it
 * (configFromLoaded) without checking the object again.
 */
export interface LoadedManifest {
  readonly file: string;
  readonly source: ManifestSource;
  /** The object as loaded (a copy, schema defaults applied); absent when it was rejected or is not ours. */
  readonly object?: ConfigObject;
  /** kind/namespace/name of the object, what duplicates are found by. */
  readonly key?: string;
  readonly problems: readonly ConfigProblem[];
  readonly rejected?: ObjectKey;
  readonly counted: boolean;
}

/** Parsed objects have no lines; line 1 is what a one-line JSON text of them would give. */
function objectSource(file: string): ManifestSource {
  return { file, document: 0, line: 1, lineOf: () => 1 };
}

/** Loads one parsed object with the same checks as a document of a file, without a text round trip. */
export function loadManifestObject(file: string, object: unknown): LoadedManifest {
  const config = new ConfigBuilder();
  // A JSON copy: the schema check applies defaults in place, and it reads what a JSON text would hold.
  const value: unknown = object === undefined ? undefined : JSON.parse(JSON.stringify(object));
  const source = objectSource(file);
  if (value !== null && value !== undefined) loadObject(config, source, value);
  const loaded = [...config.identities, ...config.resources, ...config.policies, ...config.secrets, ...config.policyTests][0];
  const rejected = config.rejected[0];
  return {
    file,
    source,
    problems: config.problems,
    counted: config.objectCount > 0,
    ...(loaded === undefined ? {} : { object: loaded, key: `${loaded.kind}/${namespaceOf(loaded)}/${loaded.metadata.name}` }),
    ...(rejected === undefined ? {} : { rejected }),
  };
}

/** A config of objects loaded one by one, in the given order, with duplicates reported as the text loader does. */
export function configFromLoaded(manifests: readonly LoadedManifest[]): GatehouseConfig {
  const config = new ConfigBuilder();
  // By kind, in the order reportDuplicates visits them, with the keys computed at load.
  const byKind = new Map<string, LoadedManifest[]>(['NonHumanIdentity', 'ProtectedResource', 'AccessPolicy', 'Secret'].map((kind) => [kind, []]));
  for (const manifest of manifests) {
    config.files.push(manifest.file);
    if (manifest.problems.length > 0) config.problems.push(...manifest.problems);
    if (manifest.counted) config.objectCount++;
    if (manifest.rejected) config.rejected.push(manifest.rejected);
    if (manifest.object === undefined) continue;
    config.add(manifest.object, manifest.source);
    byKind.get(manifest.object.kind)?.push(manifest);
  }
  const seen = new Map<string, LoadedManifest>();
  for (const manifest of [...byKind.values()].flat()) {
    const first = seen.get(manifest.key!);
    if (first === undefined) seen.set(manifest.key!, manifest);
    else reportDuplicate(config, manifest.object!, first.source);
  }
  return config;
}

/** The loader for already-parsed objects: what loadConfigFromTexts gives for their JSON texts. */
export function loadConfigFromObjects(manifests: readonly ManifestObject[]): GatehouseConfig {
  return configFromLoaded(manifests.map(({ file, object }) => loadManifestObject(file, object)));
}

function loadFile(config: ConfigBuilder, file: string, text: string): void {
  const lineCounter = new LineCounter();
  const documents = parseAllDocuments(text, { lineCounter, prettyErrors: false });
  const list = Array.isArray(documents) ? documents : [documents];
  list.forEach((document, index) => {
    const source = sourceFor(file, index, document, lineCounter);
    if (document.errors.length > 0) {
      const first = document.errors[0]!;
      // prettyErrors is off (its messages quote the source), so the position is mapped to a line here.
      const line = lineCounter.linePos(first.pos[0]).line;
      config.problem({ ...source, line }, 'GH_ERR_MANIFEST_YAML', { detail: first.message.split('\n')[0] });
      return;
    }
    const value: unknown = document.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) return; // an empty document (e.g. a trailing ---)
    loadObject(config, source, value);
  });
}

function sourceFor(file: string, index: number, document: Document, lineCounter: LineCounter): ManifestSource {
  const start = document.contents?.range?.[0] ?? 0;
  const line = lineCounter.linePos(start).line;
  return {
    file,
    document: index,
    line,
    lineOf(path) {
      for (let length = path.length; length >= 0; length--) {
        const node = fieldNode(document, path.slice(0, length));
        if (node?.range) return lineCounter.linePos(node.range[0]).line;
      }
      return line;
    },
  };
}

/**
 * The node a field path points at: for a mapping entry its key, since a block value (`rules:` then
 * items) starts a line below the field a reader looks for; for a list item, the item.
 */
function fieldNode(document: Document, path: readonly (string | number)[]): Node | undefined {
  const last = path[path.length - 1];
  const parent = path.length === 0 ? undefined : document.getIn(path.slice(0, -1), true);
  if (isMap(parent) && typeof last === 'string') {
    const pair = parent.items.find((item) => isScalar(item.key) && item.key.value === last);
    if (isNode(pair?.key)) return pair.key;
  }
  const node = document.getIn(path, true);
  return isNode(node) ? node : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function loadObject(config: ConfigBuilder, source: ManifestSource, value: unknown): void {
  if (!isRecord(value) || typeof value.kind !== 'string' || typeof value.apiVersion !== 'string') {
    config.problem(source, 'GH_ERR_MANIFEST_NOT_OBJECT', {});
    return;
  }
  const { apiVersion, kind } = value;
  if (apiVersion === 'v1' && kind === 'Secret') return loadSecret(config, source, value);
  if (apiVersion === POLICY_TEST_API_VERSION) return loadPolicyTest(config, source, value);
  const group = apiVersion.split('/')[0];
  if (group !== API_GROUP) return reportMistypedGroup(config, source, value, kind, apiVersion);
  config.objectCount++;
  const definition = KINDS.find((candidate) => candidate.kind === kind);
  const meta = metaOf(kind, value);
  if (!definition) {
    const expected = KINDS.map((candidate) => candidate.kind).join(', ');
    config.problem(source, 'GH_ERR_MANIFEST_UNKNOWN_KIND', { kind, apiVersion, expected }, {
      ...meta,
      path: 'kind',
      line: source.lineOf(['kind']),
    });
    return;
  }
  if (apiVersion !== GROUP_VERSION) {
    config.problem(source, 'GH_ERR_MANIFEST_API_VERSION', { apiVersion, kind, expected: GROUP_VERSION }, {
      ...meta,
      path: 'apiVersion',
      line: source.lineOf(['apiVersion']),
    });
    return;
  }
  loadGatehouseObject(config, source, definition.kind, value);
}

/**
 * Other tools' manifests (kustomization, namespaces) are not ours to judge, but one of our kinds
 * under a group that merely resembles ours (`gatehouse.io`) is a typo that would otherwise vanish.
 */
function reportMistypedGroup(
  config: ConfigBuilder,
  source: ManifestSource,
  value: Record<string, unknown>,
  kind: string,
  apiVersion: string,
): void {
  const ours = KINDS.some((candidate) => candidate.kind === kind);
  if (!ours || !apiVersion.toLowerCase().includes('gatehouse')) return;
  config.problem(source, 'GH_ERR_MANIFEST_API_VERSION', { apiVersion, kind, expected: GROUP_VERSION }, {
    ...metaOf(kind, value),
    severity: 'warning',
    path: 'apiVersion',
    line: source.lineOf(['apiVersion']),
  });
}

function metadataName(value: Record<string, unknown>): string | undefined {
  return isRecord(value.metadata) && typeof value.metadata.name === 'string' ? value.metadata.name : undefined;
}

function metadataNamespace(value: Record<string, unknown>): string {
  const namespace = isRecord(value.metadata) ? value.metadata.namespace : undefined;
  return typeof namespace === 'string' ? namespace : DEFAULT_NAMESPACE;
}

function metaOf(kind: string, value: Record<string, unknown>): { kind: string; name?: string; namespace: string } {
  const name = metadataName(value);
  return { kind, namespace: metadataNamespace(value), ...(name === undefined ? {} : { name }) };
}

function reject(config: ConfigBuilder, kind: string, value: Record<string, unknown>): void {
  const name = metadataName(value);
  if (name !== undefined) config.rejected.push({ kind, namespace: metadataNamespace(value), name });
}

function loadGatehouseObject(
  config: ConfigBuilder,
  source: ManifestSource,
  kind: GatehouseKind,
  value: Record<string, unknown>,
): void {
  const problems = checkAgainstSchema(kind, value);
  for (const problem of problems) {
    // The schema check words its own message (it knows the field), so it is used as is.
    config.problems.push({
      code: problem.code ?? 'GH_ERR_MANIFEST_SCHEMA',
      message: problem.message,
      file: source.file,
      line: source.lineOf(problem.path),
      ...metaOf(kind, value),
      path: formatFieldPath(problem.path),
    });
  }
  if (problems.length > 0) return reject(config, kind, value);
  const object = value as unknown as GatehouseObject;
  config.remember(object, source);
  switch (object.kind) {
    case 'NonHumanIdentity':
      config.identities.push(object);
      break;
    case 'ProtectedResource':
      config.resources.push(object);
      break;
    case 'AccessPolicy':
      config.policies.push(object);
      break;
    case 'AccessRequest':
      break; // requests are runtime objects the operator creates; a config folder may carry them, nothing uses them
  }
}

function loadSecret(config: ConfigBuilder, source: ManifestSource, value: Record<string, unknown>): void {
  config.objectCount++;
  const name = metadataName(value);
  if (!name) {
    config.problem(source, 'GH_ERR_MANIFEST_SCHEMA', { detail: 'required field is missing' }, {
      kind: 'Secret',
      path: 'metadata.name',
    });
    return;
  }
  const data: Record<string, string> = {};
  const problemsBefore = config.problems.length;
  if (isRecord(value.data)) {
    for (const [key, encoded] of Object.entries(value.data)) {
      if (!isBase64(encoded)) {
        config.problem(source, 'GH_ERR_MANIFEST_SCHEMA', { detail: 'Secret data values must be base64 (use stringData for plain text)' }, {
          ...metaOf('Secret', value),
          path: `data.${key}`,
          line: source.lineOf(['data', key]),
        });
        continue;
      }
      data[key] = Buffer.from(encoded.replace(/[\r\n]/g, ''), 'base64').toString('utf8');
    }
  }
  if (isRecord(value.stringData)) {
    for (const [key, plain] of Object.entries(value.stringData)) data[key] = String(plain);
  }
  if (config.problems.length > problemsBefore) return reject(config, 'Secret', value);
  const secret: Secret = { apiVersion: 'v1', kind: 'Secret', metadata: value.metadata as ObjectMeta, data };
  config.remember(secret, source);
  config.secrets.push(secret);
}

/** What the API server accepts for Secret data: padded standard base64, line breaks ignored (as Go does). */
function isBase64(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  const compact = value.replace(/[\r\n]/g, '');
  return compact.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(compact);
}

function loadPolicyTest(config: ConfigBuilder, source: ManifestSource, value: Record<string, unknown>): void {
  config.objectCount++;
  if (value.kind !== 'PolicyTest') {
    config.problem(source, 'GH_ERR_MANIFEST_UNKNOWN_KIND', {
      kind: String(value.kind),
      apiVersion: POLICY_TEST_API_VERSION,
      expected: 'PolicyTest',
    }, { path: 'kind', line: source.lineOf(['kind']) });
    return;
  }
  const test: PolicyTestDocument = {
    apiVersion: POLICY_TEST_API_VERSION,
    kind: 'PolicyTest',
    metadata: isRecord(value.metadata) ? (value.metadata as unknown as ObjectMeta) : { name: source.file },
    spec: value.spec,
  };
  config.remember(test, source);
  config.policyTests.push(test);
}

function reportDuplicates(config: ConfigBuilder): void {
  const seen = new Map<string, ConfigObject>();
  const all: ConfigObject[] = [...config.identities, ...config.resources, ...config.policies, ...config.secrets];
  for (const object of all) {
    const key = `${object.kind}/${namespaceOf(object)}/${object.metadata.name}`;
    const first = seen.get(key);
    if (!first) {
      seen.set(key, object);
      continue;
    }
    reportDuplicate(config, object, config.sourceOf(first));
  }
}

function reportDuplicate(config: ConfigBuilder, object: ConfigObject, other: ManifestSource | undefined): void {
  config.problems.push(
    problemAt(config, object, ['metadata', 'name'], 'GH_ERR_MANIFEST_DUPLICATE', {
      kind: object.kind,
      name: object.metadata.name,
      other: other ? `${other.file}:${other.line}` : 'another file',
    }),
  );
}

// Local mirrors of the CEL rules (x-kubernetes-validations) in api/kinds/kinds.ts. In a cluster the
// API server evaluates them; `gatehouse validate` runs without one, so each rule has a TypeScript
// twin here, keyed by the rule's exact text. cel-rules.test.ts fails when a rule has no twin.
import { KINDS, type KindDefinition } from '../kinds/kinds.js';
import type { CelRule } from '../kinds/schema-builders.js';
import { openApiSchema } from '../kinds/crd.js';

type Self = Readonly<Record<string, unknown>>;

export interface CelMirror {
  /** The rule's predicate over the object it sits on (schema defaults applied, as on the server). */
  readonly holds: (self: Self) => boolean;
  /** The field under that object a user should change: where the problem points. */
  readonly blame: readonly string[];
}

/** CEL `has(self.field)`: the field is present. */
function has(self: Self, field: string): boolean {
  return self[field] !== undefined;
}

function field(self: Self, ...path: string[]): unknown {
  let value: unknown = self;
  for (const name of path) value = isRecord(value) ? value[name] : undefined;
  return value;
}

function isRecord(value: unknown): value is Self {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export const CEL_MIRRORS: ReadonlyMap<string, CelMirror> = new Map<string, CelMirror>([
  [
    'has(self.serviceAccountName) || has(self.oidc)',
    { holds: (self) => has(self, 'serviceAccountName') || has(self, 'oidc'), blame: [] },
  ],
  [
    "self.mode != 'verify-full' || has(self.caSecretRef)",
    { holds: (self) => self.mode !== 'verify-full' || has(self, 'caSecretRef'), blame: ['mode'] },
  ],
  [
    "self.strategy == 'none' || self.strategy == 'jwt' || has(self.secretRef)",
    {
      holds: (self) => self.strategy === 'none' || self.strategy === 'jwt' || has(self, 'secretRef'),
      blame: ['strategy'],
    },
  ],
  [
    "self.protocol != 'http' || self.address.startsWith('http://') || self.address.startsWith('https://')",
    {
      holds: (self) =>
        self.protocol !== 'http' || String(self.address).startsWith('http://') || String(self.address).startsWith('https://'),
      blame: ['address'],
    },
  ],
  [
    "self.credentials.strategy != 'postgres-dynamic' || self.protocol == 'postgres'",
    {
      holds: (self) => field(self, 'credentials', 'strategy') !== 'postgres-dynamic' || self.protocol === 'postgres',
      blame: ['credentials', 'strategy'],
    },
  ],
  ['has(self.identity) != has(self.group)', { holds: (self) => has(self, 'identity') !== has(self, 'group'), blame: [] }],
  [
    "self.effect != 'require-approval' || has(self.approval)",
    { holds: (self) => self.effect !== 'require-approval' || has(self, 'approval'), blame: ['effect'] },
  ],
  [
    "self.effect == 'require-approval' || !has(self.approval)",
    { holds: (self) => self.effect === 'require-approval' || !has(self, 'approval'), blame: ['approval'] },
  ],
  ['has(self.columns) || has(self.detectors)', { holds: (self) => has(self, 'columns') || has(self, 'detectors'), blame: [] }],
]);

type SchemaNode = Readonly<Record<string, unknown>>;

function rulesOf(schema: SchemaNode): readonly CelRule[] {
  const rules = schema['x-kubernetes-validations'];
  return Array.isArray(rules) ? (rules as CelRule[]) : [];
}

function childSchemas(schema: SchemaNode): [string, SchemaNode][] {
  const properties = schema.properties;
  return isRecord(properties) ? Object.entries(properties as Record<string, SchemaNode>) : [];
}

/** Every CEL rule anywhere in a schema, with the schema path it sits on (`[]` for array items). */
export function celRulesIn(schema: SchemaNode, path = ''): { path: string; rule: CelRule }[] {
  const found = rulesOf(schema).map((rule) => ({ path, rule }));
  for (const [name, child] of childSchemas(schema)) found.push(...celRulesIn(child, path === '' ? name : `${path}.${name}`));
  if (isRecord(schema.items)) found.push(...celRulesIn(schema.items, `${path}[]`));
  return found;
}

/** Every CEL rule of every Gatehouse kind. */
export function allCelRules(): { kind: string; path: string; rule: CelRule }[] {
  return KINDS.flatMap((definition) =>
    celRulesIn(openApiSchema(definition)).map((found) => ({ kind: definition.kind, ...found })),
  );
}

export interface CelViolation {
  /** Field path of the blamed field, e.g. ['spec', 'tls', 'mode']. */
  readonly path: readonly (string | number)[];
  readonly rule: CelRule;
}

const schemas = new Map<KindDefinition, SchemaNode>();

function schemaOf(definition: KindDefinition): SchemaNode {
  let schema = schemas.get(definition);
  if (!schema) {
    schema = openApiSchema(definition);
    schemas.set(definition, schema);
  }
  return schema;
}

/** The CEL rules `object` breaks, walking its kind's schema beside it. */
export function celViolations(definition: KindDefinition, object: unknown): CelViolation[] {
  const violations: CelViolation[] = [];
  walk(schemaOf(definition), object, [], violations);
  return violations;
}

function walk(schema: SchemaNode, value: unknown, path: (string | number)[], out: CelViolation[]): void {
  if (Array.isArray(value)) {
    if (isRecord(schema.items)) value.forEach((item, index) => walk(schema.items as SchemaNode, item, [...path, index], out));
    return;
  }
  if (!isRecord(value)) return;
  for (const rule of rulesOf(schema)) {
    // A rule without a mirror is caught by cel-rules.test.ts, not guessed at here.
    const mirror = CEL_MIRRORS.get(rule.rule);
    if (mirror && !mirror.holds(value)) out.push({ path: [...path, ...mirror.blame], rule });
  }
  for (const [name, child] of childSchemas(schema)) walk(child, value[name], [...path, name], out);
}

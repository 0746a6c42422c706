// The validating webhook's verdicts must be those of `gatehouse validate` over the whole namespace,
// however the webhook scopes its work. The reference below is that definition, computed the slow
// way: every object to JSON text, the YAML loader, validateConfig over the namespace before and after.
import fc from 'fast-check';
import { isWarning, loadConfigFromTexts, type ConfigProblem, type ManifestText, type Secret } from '../../api/manifests/config.js';
import { validateConfig } from '../../api/manifests/validate.js';
import type { AccessPolicy, NonHumanIdentity, ProtectedResource } from '../../api/kinds/kinds.js';
import { validateChange, type ClusterObjects, type ValidationChange, type ValidationOutcome } from './gatehouse-validation.js';

const NAMESPACE = 'payments';
const API_VERSION = 'gatehouse.dev/v1alpha1';

// ── the reference: the whole namespace, through text ──────────────────────────────────────────

interface Named {
  readonly kind: string;
  readonly metadata: { readonly name: string };
}

function keyOf(kind: string, name: string): string {
  return `${kind}/${NAMESPACE}/${name}`;
}

function namespaceTexts(view: ClusterObjects, skip?: string): ManifestText[] {
  const texts: ManifestText[] = [];
  for (const object of [...view.identities, ...view.resources, ...view.policies] as Named[]) {
    const key = keyOf(object.kind, object.metadata.name);
    if (key !== skip) texts.push({ file: key, text: JSON.stringify(object) });
  }
  for (const secret of view.secrets) {
    const manifest = { apiVersion: 'v1', kind: 'Secret', metadata: secret.metadata, stringData: secret.data };
    texts.push({ file: keyOf('Secret', secret.metadata.name), text: JSON.stringify(manifest) });
  }
  return texts;
}

function problemKey(problem: ConfigProblem): string {
  return [problem.code, problem.kind, problem.namespace, problem.name, problem.path, problem.message].join('|');
}

function referenceChange(view: ClusterObjects, change: ValidationChange): ValidationOutcome {
  const key = keyOf(change.kind, change.name);
  const texts = namespaceTexts(view, key);
  if (change.operation !== 'DELETE' && change.object !== undefined) texts.push({ file: key, text: JSON.stringify(change.object) });
  const after = validateConfig(loadConfigFromTexts(texts));
  const isOwn = (problem: ConfigProblem): boolean =>
    problem.kind === change.kind && (problem.name ?? '') === change.name && problem.namespace === change.namespace;
  const before = new Set(validateConfig(loadConfigFromTexts(namespaceTexts(view))).map(problemKey));
  const own = after.filter(isOwn);
  return {
    errors: own.filter((problem) => !isWarning(problem)),
    warnings: own.filter(isWarning),
    others: after.filter((problem) => !isOwn(problem) && !before.has(problemKey(problem))),
  };
}

// ── random namespaces and changes, from small pools so that names, claims and ports collide ───

const IDENTITY_NAMES = ['id-a', 'id-b', 'id-c', 'id-d'];
const RESOURCE_NAMES = ['db-a', 'db-b', 'api-c'];
const POLICY_NAMES = ['pol-1', 'pol-2', 'pol-3', 'pol-4'];
const GROUPS = ['g1', 'g2', 'g3'];
const DURATIONS = ['0s', '5m', '15m', '1h'];

function maybe<T>(arbitrary: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> {
  return fc.option(arbitrary, { nil: undefined });
}

/** Drops undefined fields, as a JSON body from the API server would not have them. */
function compact<T extends object>(object: T): T {
  return JSON.parse(JSON.stringify(object)) as T;
}

function identityArb(name: fc.Arbitrary<string>): fc.Arbitrary<NonHumanIdentity> {
  return fc
    .record({
      name,
      serviceAccountName: maybe(fc.constantFrom('sa-1', 'sa-2')),
      oidc: maybe(fc.record({ issuer: fc.constant('https://issuer.example'), subject: fc.constantFrom('repo:a', 'repo:b') })),
      groups: maybe(fc.subarray(GROUPS, { minLength: 1 })),
      maxCredentialTTL: maybe(fc.constantFrom(...DURATIONS)),
      broken: fc.integer({ min: 0, max: 7 }).map((draw) => draw === 0),
    })
    .map(({ name, broken, ...spec }) =>
      compact({
        apiVersion: API_VERSION,
        kind: 'NonHumanIdentity',
        metadata: { name, namespace: NAMESPACE, uid: `uid-${name}`, resourceVersion: '7' },
        // An unknown field fails the schema check: the object is rejected, and references to it are not "unknown".
        spec: broken ? { ...spec, serviceAcount: 'typo' } : spec,
      }) as NonHumanIdentity,
    );
}

function resourceArb(name: fc.Arbitrary<string>): fc.Arbitrary<ProtectedResource> {
  return fc
    .record({
      name,
      protocol: fc.constantFrom('postgres', 'http', 'tcp'),
      // Port 0 fails the schema: a rejected resource.
      port: fc.constantFrom(15432, 15433, 0),
      strategy: fc.constantFrom('none', 'static', 'jwt'),
      secret: maybe(fc.constantFrom('admin', 'missing')),
      database: maybe(fc.constant('orders')),
      tls: maybe(fc.constantFrom('disable', 'require')),
    })
    .map(({ name, protocol, port, strategy, secret, database, tls }) =>
      compact({
        apiVersion: API_VERSION,
        kind: 'ProtectedResource',
        metadata: { name, namespace: NAMESPACE },
        spec: {
          protocol,
          address: protocol === 'http' ? 'https://api.payments.svc:8443' : 'db.payments.svc:5432',
          database,
          tls: tls === undefined ? undefined : { mode: tls },
          credentials: { strategy, secretRef: secret === undefined ? undefined : { name: secret } },
          sidecar: { port },
        },
      }) as ProtectedResource,
    );
}

const ruleArb = fc
  .record({
    effect: fc.constantFrom('allow', 'deny', 'require-approval'),
    operations: maybe(fc.subarray(['read', 'write', 'delete', 'ddl'], { minLength: 1 })),
    tables: maybe(fc.constant(['public.*'])),
    message: maybe(fc.constant('because')),
    name: maybe(fc.constantFrom('r1', 'r2')),
  })
  .map((rule) => compact(rule.effect === 'require-approval' ? { ...rule, approval: { approvers: { groups: ['dba'] } } } : rule));

function policyArb(name: fc.Arbitrary<string>): fc.Arbitrary<AccessPolicy> {
  const subject = fc.oneof(
    fc.constantFrom(...IDENTITY_NAMES, 'nobody').map((identity) => ({ identity })),
    fc.constantFrom(...GROUPS).map((group) => ({ group })),
  );
  return fc
    .record({
      name,
      subjects: fc.uniqueArray(subject, { minLength: 1, maxLength: 3, selector: (item) => JSON.stringify(item) }),
      resources: fc.uniqueArray(fc.constantFrom(...RESOURCE_NAMES, 'db-gone'), { minLength: 1, maxLength: 2 }),
      rules: fc.array(ruleArb, { minLength: 1, maxLength: 3 }),
      credentialTTL: maybe(fc.constantFrom(...DURATIONS)),
    })
    .map(({ name, ...spec }) => compact({ apiVersion: API_VERSION, kind: 'AccessPolicy', metadata: { name, namespace: NAMESPACE }, spec }) as AccessPolicy);
}

const ADMIN_SECRET: Secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'admin', namespace: NAMESPACE }, data: { username: 'u', password: '' } };

function uniqueByName<T extends Named>(arbitrary: (name: fc.Arbitrary<string>) => fc.Arbitrary<T>, names: string[]): fc.Arbitrary<T[]> {
  return fc.uniqueArray(arbitrary(fc.constantFrom(...names)), { maxLength: names.length, selector: (object) => object.metadata.name });
}

const viewArb: fc.Arbitrary<ClusterObjects> = fc.record({
  identities: uniqueByName(identityArb, IDENTITY_NAMES),
  resources: uniqueByName(resourceArb, RESOURCE_NAMES),
  policies: uniqueByName(policyArb, POLICY_NAMES),
  secrets: fc.constant([ADMIN_SECRET]),
});

const changedObjectArb = fc.oneof(
  identityArb(fc.constantFrom(...IDENTITY_NAMES)),
  resourceArb(fc.constantFrom(...RESOURCE_NAMES)),
  policyArb(fc.constantFrom(...POLICY_NAMES)),
) as fc.Arbitrary<Named>;

function existing(view: ClusterObjects): Named[] {
  return [...view.identities, ...view.resources, ...view.policies] as Named[];
}

/** A write of a random object (CREATE or UPDATE, as the name exists or not), or a DELETE of one that exists. */
const scenarioArb = viewArb.chain((view) => {
  const write = changedObjectArb.map((object): ValidationChange => {
    const exists = existing(view).some((other) => other.kind === object.kind && other.metadata.name === object.metadata.name);
    return { operation: exists ? 'UPDATE' : 'CREATE', kind: object.kind, namespace: NAMESPACE, name: object.metadata.name, object };
  });
  const objects = existing(view);
  if (objects.length === 0) return fc.tuple(fc.constant(view), write);
  const remove = fc.constantFrom(...objects).map((object): ValidationChange => ({ operation: 'DELETE', kind: object.kind, namespace: NAMESPACE, name: object.metadata.name }));
  return fc.tuple(fc.constant(view), fc.oneof({ arbitrary: write, weight: 3 }, { arbitrary: remove, weight: 1 }));
});

// ── the tests ──────────────────────────────────────────────────────────────────────────────────

describe('validateChange', () => {
  it('gives the verdicts of validateConfig over the whole namespace, for random namespaces and changes', () => {
    let withOthers = 0;
    let withErrors = 0;
    fc.assert(
      fc.property(scenarioArb, ([view, change]) => {
        const outcome = validateChange(view, change);
        expect(outcome).toEqual(referenceChange(view, change));
        if (outcome.others.length > 0) withOthers++;
        if (outcome.errors.length > 0) withErrors++;
      }),
      { numRuns: 600, seed: 20261122 },
    );
    // The generator must reach the cases that matter, or the comparison proves little.
    expect(withOthers).toBeGreaterThan(30);
    expect(withErrors).toBeGreaterThan(30);
  });

  it('gives the same verdicts when the view hands out the same objects again (loaded objects are reused)', () => {
    fc.assert(
      fc.property(scenarioArb, scenarioArb, ([view, change], [, second]) => {
        validateChange(view, change);
        expect(validateChange(view, second)).toEqual(referenceChange(view, second));
      }),
      { numRuns: 150, seed: 7 },
    );
  });

  it('loads an object again when it changed in place under a new resourceVersion', () => {
    const resource = compact({ apiVersion: API_VERSION, kind: 'ProtectedResource', metadata: { name: 'db-a', namespace: NAMESPACE, resourceVersion: '1' }, spec: { protocol: 'tcp', address: 'db.payments.svc:5432', credentials: { strategy: 'none' }, sidecar: { port: 15432 } } }) as ProtectedResource;
    const view: ClusterObjects = { identities: [], resources: [resource], policies: [], secrets: [] };
    const second = { ...resource, metadata: { name: 'db-b', namespace: NAMESPACE } };
    const create: ValidationChange = { operation: 'CREATE', kind: 'ProtectedResource', namespace: NAMESPACE, name: 'db-b', object: second };
    expect(validateChange(view, create).errors.map((problem) => problem.code)).toEqual(['GH_ERR_PORT_CONFLICT']);
    Object.assign(resource, { metadata: { ...resource.metadata, resourceVersion: '2' }, spec: { ...resource.spec, sidecar: { port: 15433 } } });
    expect(validateChange(view, create)).toEqual({ errors: [], warnings: [], others: [] });
  });

  it('leaves the objects of the view and the change as they were (schema defaults go on copies)', () => {
    fc.assert(
      fc.property(scenarioArb, ([view, change]) => {
        const before = JSON.stringify([view, change]);
        validateChange(view, change);
        expect(JSON.stringify([view, change])).toBe(before);
      }),
      { numRuns: 100, seed: 11 },
    );
  });

  describe('in a namespace of 2,000 policies', () => {
    const identity = compact({ apiVersion: API_VERSION, kind: 'NonHumanIdentity', metadata: { name: 'ci-runner', namespace: NAMESPACE }, spec: { serviceAccountName: 'ci-runner', groups: ['ci'] } }) as NonHumanIdentity;
    const resource = compact({ apiVersion: API_VERSION, kind: 'ProtectedResource', metadata: { name: 'orders-db', namespace: NAMESPACE }, spec: { protocol: 'postgres', address: 'db.payments.svc:5432', credentials: { strategy: 'none' }, sidecar: { port: 15432 } } }) as ProtectedResource;
    const policy = (name: string, effect: 'allow' | 'deny', ttl?: string): AccessPolicy =>
      compact({ apiVersion: API_VERSION, kind: 'AccessPolicy', metadata: { name, namespace: NAMESPACE }, spec: { subjects: [{ group: 'ci' }], resources: ['orders-db'], credentialTTL: ttl, rules: [{ effect, operations: ['read'] }] } }) as AccessPolicy;
    const view: ClusterObjects = {
      identities: [identity],
      resources: [resource],
      policies: [...Array.from({ length: 1_999 }, (_, index) => policy(`allow-${index}`, 'allow', index % 2 === 0 ? '10m' : undefined)), policy('guard', 'deny')],
      secrets: [],
    };

    it('reports on every policy a change of their identity breaks, as validateConfig does', () => {
      const shorter = { ...identity, spec: { ...identity.spec, maxCredentialTTL: '5m' } };
      const change: ValidationChange = { operation: 'UPDATE', kind: 'NonHumanIdentity', namespace: NAMESPACE, name: 'ci-runner', object: shorter };
      const outcome = validateChange(view, change);
      expect(outcome.others.map((problem) => problem.code)).toEqual(Array(1_000).fill('GH_ERR_TTL_ABOVE_MAXIMUM'));
      expect(outcome).toEqual(referenceChange(view, change));
    });

    it('reports the deny-only policy left alone when the last grant goes, and nothing while others remain', () => {
      const onlyGuard: ClusterObjects = { ...view, policies: [policy('allow-0', 'allow'), policy('guard', 'deny')] };
      const removeGrant: ValidationChange = { operation: 'DELETE', kind: 'AccessPolicy', namespace: NAMESPACE, name: 'allow-0' };
      expect(validateChange(onlyGuard, removeGrant).others.map((problem) => `${problem.name} ${problem.code}`)).toEqual(['guard GH_ERR_POLICY_GRANTS_NOTHING']);
      expect(validateChange(view, removeGrant)).toEqual({ errors: [], warnings: [], others: [] });
    });

    it('refuses a second resource on a taken sidecar port, naming the first', () => {
      const second = { ...resource, metadata: { name: 'orders-replica', namespace: NAMESPACE } };
      const outcome = validateChange(view, { operation: 'CREATE', kind: 'ProtectedResource', namespace: NAMESPACE, name: 'orders-replica', object: second });
      expect(outcome.errors.map((problem) => problem.message)).toEqual([expect.stringContaining('orders-db')]);
      expect(outcome.errors[0]!.code).toBe('GH_ERR_PORT_CONFLICT');
    });
  });
});

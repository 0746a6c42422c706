// `gatehouse validate`: everything a cluster would reject or silently misapply in a folder of
// manifests, found before it is applied. The loader's problems (YAML, schema, unknown kinds,
// duplicates) come first; then the CEL rules the API server enforces, cross-references, and the
// semantic checks below, each a small named function over one object, one rule or the whole set.
import { parseDuration } from '../duration.js';
import { isGatehouseError, type ErrorDetails } from '../errors.js';
import {
  kindDefinition,
  NonHumanIdentitySpec,
  type AccessPolicy,
  type MaskingRuleT,
  type NonHumanIdentity,
  type PolicyRuleT,
  type ProtectedResource,
  type Protocol,
} from '../kinds/kinds.js';
import { compilePathGlob, compileTableGlob, parseColumnGlob } from '../policy/glob.js';
import type { SqlOperation } from '../sql/operations.js';
import { celViolations } from './cel-rules.js';
import { namespaceOf, type ConfigProblem, type GatehouseConfig } from './config.js';
import { claimsOf, ValidationContext, type FieldPath } from './validation-context.js';

type Problems = Iterable<ConfigProblem>;
type ObjectCheck<T> = (object: T, context: ValidationContext) => Problems;

/** One rule of one policy, with what the rule checks need to know about where it sits. */
interface RuleSite {
  readonly policy: AccessPolicy;
  readonly rule: PolicyRuleT;
  readonly path: FieldPath;
  /** The policy's resources that exist; protocol checks say nothing when this is empty. */
  readonly resources: readonly ProtectedResource[];
}

type RuleCheck = (site: RuleSite, context: ValidationContext) => Problems;

/** The objects whose problems are wanted: all of the config's, or a few of them (see validateObjects). */
export interface ValidationScope {
  readonly identities: readonly NonHumanIdentity[];
  readonly resources: readonly ProtectedResource[];
  readonly policies: readonly AccessPolicy[];
}

type ConfigCheck = (context: ValidationContext, scope: ValidationScope) => Problems;

/** The loader's problems plus every semantic problem, ordered by file and line. */
export function validateConfig(config: GatehouseConfig): ConfigProblem[] {
  const context = new ValidationContext(config);
  return sortProblems([...config.problems, ...semanticProblems(context, config)]);
}

/**
 * The semantic problems validateConfig would report about the objects of `scope` (objects of
 * `context.config`), in its order, without checking the rest: every check that looks at other
 * objects does so through the context's indexes. The loader's problems are the caller's to add.
 */
export function validateObjects(context: ValidationContext, scope: ValidationScope): ConfigProblem[] {
  return sortProblems([...semanticProblems(context, scope)]);
}

function* semanticProblems(context: ValidationContext, scope: ValidationScope): Problems {
  for (const check of CONFIG_CHECKS) yield* check(context, scope);
}

function sortProblems(problems: ConfigProblem[]): ConfigProblem[] {
  return problems
    .map((problem, order) => ({ problem, order }))
    .sort((a, b) => compareText(a.problem.file, b.problem.file) || a.problem.line - b.problem.line || a.order - b.order)
    .map(({ problem }) => problem);
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// ── protocols ───────────────────────────────────────────────────────────────────────────────────

const SQL_PROTOCOLS: ReadonlySet<Protocol> = new Set(['postgres', 'mysql']);
/** Protocols whose requests carry a URL path; the Kubernetes API is HTTP underneath. */
const PATH_PROTOCOLS: ReadonlySet<Protocol> = new Set(['http', 'kubernetes']);
/** Protocols whose address is a URL rather than host:port. */
const URL_PROTOCOLS: ReadonlySet<Protocol> = PATH_PROTOCOLS;
/** What an HTTP request can be (api/policy/http.ts): GET/HEAD/OPTIONS, POST/PUT/PATCH, DELETE. */
const HTTP_OPERATIONS: ReadonlySet<SqlOperation> = new Set(['read', 'write', 'delete']);

function describeResources(resources: readonly ProtectedResource[]): string {
  return resources.map((resource) => `${resource.metadata.name} (${resource.spec.protocol})`).join(', ');
}

function isUrl(address: string): boolean {
  return /^https?:\/\//.test(address);
}

// ── every object ────────────────────────────────────────────────────────────────────────────────

/** The x-kubernetes-validations rules of kinds.ts, mirrored in cel-rules.ts. */
function* checkCelRules(context: ValidationContext, scope: ValidationScope): Problems {
  const objects = [...scope.identities, ...scope.resources, ...scope.policies];
  for (const object of objects) {
    const definition = kindDefinition(object.kind)!;
    for (const violation of celViolations(definition, object)) {
      yield context.error(object, violation.path, 'GH_ERR_CEL_RULE', {
        message: violation.rule.message,
        rule: violation.rule.rule,
      });
    }
  }
}

function* zeroDuration(
  context: ValidationContext,
  object: NonHumanIdentity | AccessPolicy,
  path: FieldPath,
  value: string | undefined,
  hint: string,
): Problems {
  if (value === undefined || parseDuration(value) !== 0) return;
  yield context.error(object, path, 'GH_ERR_DURATION_ZERO', { field: String(path[path.length - 1]), value, hint });
}

// ── NonHumanIdentity ────────────────────────────────────────────────────────────────────────────

const identityZeroTTL: ObjectCheck<NonHumanIdentity> = (identity, context) =>
  zeroDuration(context, identity, ['spec', 'maxCredentialTTL'], identity.spec.maxCredentialTTL,
    'no credential could ever be issued to this identity; use a positive duration like 15m');

/** A workload proves one ServiceAccount or OIDC subject; two identities claiming it make it ambiguous. */
function* checkIdentityClaims(context: ValidationContext, scope: ValidationScope): Problems {
  for (const identity of scope.identities) {
    for (const { claim, path } of claimsOf(identity)) {
      // The first claimant in config order keeps the claim; every later one is the conflict.
      const first = context.claimants(namespaceOf(identity), claim)[0];
      if (first !== undefined && first !== identity) {
        yield context.error(identity, path, 'GH_ERR_IDENTITY_CONFLICT', { claim, other: first.metadata.name });
      }
    }
  }
}

// ── ProtectedResource ───────────────────────────────────────────────────────────────────────────

const NEEDS_USER_PASSWORD = new Set(['static', 'postgres-dynamic']);

function* checkCredentialsSecret(resource: ProtectedResource, context: ValidationContext): Problems {
  const { strategy, secretRef } = resource.spec.credentials;
  if (secretRef === undefined || strategy === 'none') return;
  const path = ['spec', 'credentials', 'secretRef', 'name'];
  const target = { kind: 'Secret' as const, name: secretRef.name };
  const missing = context.unresolved(resource, path, target, 'GH_ERR_REF_UNKNOWN_SECRET', { strategy });
  if (missing) yield missing;
  const secret = context.secret(namespaceOf(resource), secretRef.name);
  if (!secret || !NEEDS_USER_PASSWORD.has(strategy)) return;
  const lacking = ['username', 'password'].filter((key) => secret.data[key] === undefined);
  if (lacking.length > 0) yield context.error(resource, path, 'GH_ERR_REF_SECRET_KEYS', { name: secretRef.name, keys: lacking.join(', ') });
}

function* checkCaSecret(resource: ProtectedResource, context: ValidationContext): Problems {
  const ref = resource.spec.tls?.caSecretRef;
  if (ref === undefined || resource.spec.tls?.mode === 'disable') return;
  const key = ref.key ?? 'ca.crt';
  const path = ['spec', 'tls', 'caSecretRef', 'name'];
  const missing = context.unresolved(resource, path, { kind: 'Secret', name: ref.name }, 'GH_ERR_REF_UNKNOWN_CA_SECRET', { key });
  if (missing) yield missing;
  const secret = context.secret(namespaceOf(resource), ref.name);
  if (!secret) return;
  const bundle = secret.data[key];
  if (bundle === undefined) yield context.error(resource, path, 'GH_ERR_REF_CA_SECRET_KEY', { name: ref.name, key });
  else if (!bundle.includes('-----BEGIN CERTIFICATE-----')) {
    yield context.error(resource, path, 'GH_ERR_REF_CA_NOT_PEM', { name: ref.name, key });
  }
}

function* checkAddress(resource: ProtectedResource, context: ValidationContext): Problems {
  const { address, protocol } = resource.spec;
  const detail = addressProblem(address, protocol);
  if (detail) yield context.error(resource, ['spec', 'address'], 'GH_ERR_RESOURCE_ADDRESS', { address, protocol, detail });
}

function addressProblem(address: string, protocol: Protocol): string | undefined {
  if (isUrl(address)) {
    if (!URL_PROTOCOLS.has(protocol)) return `${protocol} resources are reached at host:port (e.g. db.payments.svc:5432), not a URL`;
    return URL.canParse(address) ? undefined : 'it is not a valid URL';
  }
  // The http-needs-a-URL case is the CEL rule's to report; here only the port can be wrong.
  const port = Number(/:([0-9]+)$/.exec(address)?.[1]);
  return port >= 1 && port <= 65535 ? undefined : `port ${port} is outside 1-65535`;
}

/** For URL addresses the scheme decides TLS; a tls.mode that says otherwise cannot be honoured. */
function* checkTlsScheme(resource: ProtectedResource, context: ValidationContext): Problems {
  const { address } = resource.spec;
  const mode = resource.spec.tls?.mode;
  if (!isUrl(address) || mode === undefined) return;
  const https = address.startsWith('https://');
  const path = ['spec', 'tls', 'mode'];
  if (!https && (mode === 'require' || mode === 'verify-full')) {
    yield context.error(resource, path, 'GH_ERR_RESOURCE_TLS_SCHEME', {
      mode, scheme: 'http://', address, hint: 'use an https:// address for TLS, or set tls.mode to disable',
    });
  }
  if (https && mode === 'disable') {
    yield context.error(resource, path, 'GH_ERR_RESOURCE_TLS_SCHEME', {
      mode, scheme: 'https://', address, hint: 'https always uses TLS: use an http:// address, or a tls.mode other than disable',
    });
  }
}

/** Fields the resource's protocol or strategy makes meaningless: a hint that something else was meant. */
function* checkIgnoredResourceFields(resource: ProtectedResource, context: ValidationContext): Problems {
  const { spec } = resource;
  if (spec.database !== undefined && !SQL_PROTOCOLS.has(spec.protocol)) {
    yield context.warning(resource, ['spec', 'database'], 'GH_ERR_FIELD_IGNORED', {
      field: 'database', reason: `on a ${spec.protocol} resource (only postgres and mysql have databases)`,
    });
  }
  if (spec.credentials.strategy === 'none' && spec.credentials.secretRef !== undefined) {
    yield context.warning(resource, ['spec', 'credentials', 'secretRef'], 'GH_ERR_FIELD_IGNORED', {
      field: 'credentials.secretRef', reason: 'with strategy none (nothing is sent upstream)',
    });
  }
  if (spec.tls?.mode === 'disable' && spec.tls.caSecretRef !== undefined) {
    yield context.warning(resource, ['spec', 'tls', 'caSecretRef'], 'GH_ERR_FIELD_IGNORED', {
      field: 'tls.caSecretRef', reason: 'with tls.mode disable (nothing is verified without TLS)',
    });
  }
}

/** The app reaches each resource at 127.0.0.1:PORT inside one pod, so ports must differ per namespace. */
function* checkPortConflicts(context: ValidationContext, scope: ValidationScope): Problems {
  for (const resource of scope.resources) {
    const port = resource.spec.sidecar.port;
    const first = context.portOwners(namespaceOf(resource), port)[0];
    if (first !== undefined && first !== resource) {
      yield context.error(resource, ['spec', 'sidecar', 'port'], 'GH_ERR_PORT_CONFLICT', {
        port, first: first.metadata.name, second: resource.metadata.name,
      });
    }
  }
}

// ── AccessPolicy ────────────────────────────────────────────────────────────────────────────────

function* checkPolicyResources(policy: AccessPolicy, context: ValidationContext): Problems {
  for (const [index, name] of policy.spec.resources.entries()) {
    const target = { kind: 'ProtectedResource' as const, name };
    const problem = context.unresolved(policy, ['spec', 'resources', index], target, 'GH_ERR_REF_UNKNOWN_RESOURCE');
    if (problem) yield problem;
  }
}

function* checkPolicySubjects(policy: AccessPolicy, context: ValidationContext): Problems {
  const namespace = namespaceOf(policy);
  for (const [index, subject] of policy.spec.subjects.entries()) {
    if (subject.identity !== undefined) {
      const target = { kind: 'NonHumanIdentity' as const, name: subject.identity };
      const path = ['spec', 'subjects', index, 'identity'];
      const problem = context.unresolved(policy, path, target, 'GH_ERR_REF_UNKNOWN_IDENTITY');
      if (problem) yield problem;
    }
    // A group is open-ended (identities may join later), so an empty one is only suspicious.
    if (subject.group !== undefined && context.membersOf(namespace, subject.group).length === 0) {
      yield context.warning(policy, ['spec', 'subjects', index, 'group'], 'GH_ERR_REF_EMPTY_GROUP', { group: subject.group, namespace });
    }
  }
}

const DEFAULT_MAX_CREDENTIAL_TTL = String(NonHumanIdentitySpec.properties.maxCredentialTTL.default);

function* checkCredentialTTL(policy: AccessPolicy, context: ValidationContext): Problems {
  const ttl = policy.spec.credentialTTL;
  if (ttl === undefined) return;
  const path = ['spec', 'credentialTTL'];
  yield* zeroDuration(context, policy, path, ttl,
    'credentials would expire as they are issued; use a positive duration, or leave it out for the identity maximum');
  for (const { identity, group } of context.membersOfPolicy(policy)) {
    const max = identity.spec.maxCredentialTTL ?? DEFAULT_MAX_CREDENTIAL_TTL;
    if (parseDuration(ttl) <= parseDuration(max)) continue;
    const name = group === undefined ? identity.metadata.name : `${identity.metadata.name} (member of group ${group})`;
    yield context.error(policy, path, 'GH_ERR_TTL_ABOVE_MAXIMUM', { ttl, max, identity: name });
  }
}

function* checkDuplicateRuleNames(policy: AccessPolicy, context: ValidationContext): Problems {
  const firstIndex = new Map<string, number>();
  for (const [index, rule] of policy.spec.rules.entries()) {
    if (rule.name === undefined) continue;
    const first = firstIndex.get(rule.name);
    if (first === undefined) firstIndex.set(rule.name, index);
    else yield context.error(policy, ['spec', 'rules', index, 'name'], 'GH_ERR_RULE_DUPLICATE_NAME', { name: rule.name, first });
  }
}

/**
 * A deny-only policy is a sensible guardrail layered over policies that grant; alone it changes
 * nothing, since no match is already a deny. Only the lone case is reported.
 */
function* checkGrantsSomething(policy: AccessPolicy, context: ValidationContext): Problems {
  if (policy.spec.rules.some((rule) => rule.effect !== 'deny')) return;
  const members = new Set(context.membersOfPolicy(policy).map((member) => member.identity.metadata.name));
  const resources = context.resourcesOf(policy);
  if (members.size === 0 || resources.length === 0) return; // reference problems already explain this policy
  // Only policies sharing one of its resources can be layered under it; the index finds them without a scan.
  const namespace = namespaceOf(policy);
  const sharing = new Set(policy.spec.resources.flatMap((name) => context.policiesReferencing(namespace, 'resource', name)));
  const layeredOver = [...sharing].some(
    (other) =>
      other !== policy &&
      other.spec.rules.some((rule) => rule.effect !== 'deny') &&
      context.membersOfPolicy(other).some((member) => members.has(member.identity.metadata.name)),
  );
  if (!layeredOver) {
    yield context.warning(policy, ['spec', 'rules'], 'GH_ERR_POLICY_GRANTS_NOTHING', { resources: describeResources(resources) });
  }
}

/** A deny with no conditions matches every action, so the policy's grants are dead letters. */
function* checkCatchAllDeny(policy: AccessPolicy, context: ValidationContext): Problems {
  const grants = policy.spec.rules.flatMap((rule, index) => (rule.effect === 'deny' ? [] : [rule.name ?? `rules[${index}]`]));
  if (grants.length === 0) return;
  for (const [index, rule] of policy.spec.rules.entries()) {
    if (rule.effect !== 'deny' || !matchesEverything(rule)) continue;
    yield context.warning(policy, ['spec', 'rules', index], 'GH_ERR_RULE_SHADOWS_POLICY', { rules: grants.join(', ') });
  }
}

function matchesEverything(rule: PolicyRuleT): boolean {
  return rule.operations === undefined && rule.tables === undefined && rule.paths === undefined && rule.unboundedWrite !== true;
}

function* checkMasking(policy: AccessPolicy, context: ValidationContext): Problems {
  for (const [index, masking] of (policy.spec.masking ?? []).entries()) {
    const path = ['spec', 'masking', index];
    if ((masking.columns?.length ?? 0) === 0 && (masking.detectors?.length ?? 0) === 0 && !maskingCelBroken(masking)) {
      yield context.warning(policy, path, 'GH_ERR_MASKING_EMPTY');
    }
    for (const [position, glob] of (masking.columns ?? []).entries()) {
      const details = globError(() => parseColumnGlob(glob));
      if (details) yield context.error(policy, [...path, 'columns', position], 'GH_ERR_BAD_GLOB', details);
    }
  }
}

/** Both fields absent is the CEL rule's to report; both present but empty passes it and masks nothing. */
function maskingCelBroken(masking: MaskingRuleT): boolean {
  return masking.columns === undefined && masking.detectors === undefined;
}

function* checkRules(policy: AccessPolicy, context: ValidationContext): Problems {
  const resources = context.resourcesOf(policy);
  for (const [index, rule] of policy.spec.rules.entries()) {
    const site: RuleSite = { policy, rule, path: ['spec', 'rules', index], resources };
    for (const check of RULE_CHECKS) yield* check(site, context);
  }
}

// ── one rule ────────────────────────────────────────────────────────────────────────────────────

function* checkRuleGlobs({ policy, rule, path }: RuleSite, context: ValidationContext): Problems {
  const globs = [
    ...(rule.tables ?? []).map((glob, index) => ({ glob, at: [...path, 'tables', index], compile: compileTableGlob })),
    ...(rule.paths ?? []).map((glob, index) => ({ glob, at: [...path, 'paths', index], compile: compilePathGlob })),
  ];
  for (const { glob, at, compile } of globs) {
    const details = globError(() => compile(glob));
    if (details) yield context.error(policy, at, 'GH_ERR_BAD_GLOB', details);
  }
}

function globError(compile: () => unknown): ErrorDetails | undefined {
  try {
    compile();
    return undefined;
  } catch (error) {
    if (isGatehouseError(error, 'GH_ERR_BAD_GLOB')) return error.details;
    throw error;
  }
}

/** tables, paths and unboundedWrite each need a protocol that has them, or the rule never matches. */
function* checkRuleFieldsFitProtocols({ policy, rule, path, resources }: RuleSite, context: ValidationContext): Problems {
  if (rule.tables !== undefined && rule.paths !== undefined) {
    yield context.error(policy, [...path, 'paths'], 'GH_ERR_RULE_NEVER_MATCHES', {
      detail: 'a request touches tables (SQL) or a URL path (HTTP), never both; split it into a rule with tables and one with paths',
    });
    return;
  }
  if (resources.length === 0) return;
  const fields = [
    { field: 'tables', present: rule.tables !== undefined, fits: SQL_PROTOCOLS },
    { field: 'paths', present: rule.paths !== undefined, fits: PATH_PROTOCOLS },
    { field: 'unboundedWrite', present: rule.unboundedWrite === true, fits: SQL_PROTOCOLS },
  ];
  for (const { field, present, fits } of fields) {
    if (!present || resources.some((resource) => fits.has(resource.spec.protocol))) continue;
    yield context.error(policy, [...path, field], 'GH_ERR_RULE_PROTOCOL_MISMATCH', {
      field, fits: [...fits].join(' and '), resources: describeResources(resources),
    });
  }
}

function* checkHttpOperations({ policy, rule, path, resources }: RuleSite, context: ValidationContext): Problems {
  if (rule.operations === undefined || resources.length === 0) return;
  if (!resources.every((resource) => resource.spec.protocol === 'http')) return;
  const foreign = rule.operations.filter((operation) => !HTTP_OPERATIONS.has(operation));
  if (foreign.length === 0) return;
  yield context.warning(policy, [...path, 'operations', rule.operations.indexOf(foreign[0]!)], 'GH_ERR_RULE_OPERATION_PROTOCOL', {
    operations: foreign.join(', '), resources: describeResources(resources),
  });
}

/** unboundedWrite matches UPDATE (write) or DELETE (delete) without WHERE, nothing else. */
function* checkUnboundedWrite({ policy, rule, path }: RuleSite, context: ValidationContext): Problems {
  if (rule.unboundedWrite !== true || rule.operations === undefined) return;
  if (rule.operations.includes('write') || rule.operations.includes('delete')) return;
  yield context.error(policy, [...path, 'unboundedWrite'], 'GH_ERR_RULE_NEVER_MATCHES', {
    detail: `unboundedWrite matches only UPDATE or DELETE without WHERE (operations write and delete), but operations lists only ${rule.operations.join(', ')}; add write or delete, or drop unboundedWrite`,
  });
}

function* checkApprovers({ policy, rule, path }: RuleSite, context: ValidationContext): Problems {
  const approval = rule.approval;
  if (approval === undefined || rule.effect !== 'require-approval') return;
  const groups = approval.approvers.groups?.length ?? 0;
  const users = approval.approvers.users?.length ?? 0;
  const at = [...path, 'approval', 'approvers'];
  if (groups === 0 && users === 0) {
    yield context.error(policy, at, 'GH_ERR_APPROVAL_NO_APPROVERS');
    return;
  }
  // Group sizes are unknown here; a bare list of users is countable.
  const min = approval.minApprovals ?? 1;
  if (groups === 0 && users < min) {
    yield context.error(policy, [...path, 'approval', 'minApprovals'], 'GH_ERR_APPROVAL_TOO_FEW_APPROVERS', { min, count: users });
  }
}

function* checkApprovalDurations({ policy, rule, path }: RuleSite, context: ValidationContext): Problems {
  const approval = rule.approval;
  if (approval === undefined) return;
  yield* zeroDuration(context, policy, [...path, 'approval', 'timeout'], approval.timeout,
    'every held statement would expire at once; use a positive duration like 5m');
  yield* zeroDuration(context, policy, [...path, 'approval', 'grantWindow'], approval.grantWindow,
    'leave it out for single-use approvals, or use a positive duration like 10m');
}

function* checkAllowMessage({ policy, rule, path }: RuleSite, context: ValidationContext): Problems {
  if (rule.effect !== 'allow' || rule.message === undefined) return;
  yield context.warning(policy, [...path, 'message'], 'GH_ERR_FIELD_IGNORED', {
    field: 'message', reason: 'on an allow rule (it is shown only when a rule denies or holds a statement)',
  });
}

// ── the lists ───────────────────────────────────────────────────────────────────────────────────

const RULE_CHECKS: readonly RuleCheck[] = [
  checkRuleGlobs,
  checkRuleFieldsFitProtocols,
  checkHttpOperations,
  checkUnboundedWrite,
  checkApprovers,
  checkApprovalDurations,
  checkAllowMessage,
];

const IDENTITY_CHECKS: readonly ObjectCheck<NonHumanIdentity>[] = [identityZeroTTL];

const RESOURCE_CHECKS: readonly ObjectCheck<ProtectedResource>[] = [
  checkCredentialsSecret,
  checkCaSecret,
  checkAddress,
  checkTlsScheme,
  checkIgnoredResourceFields,
];

const POLICY_CHECKS: readonly ObjectCheck<AccessPolicy>[] = [
  checkPolicyResources,
  checkPolicySubjects,
  checkCredentialTTL,
  checkDuplicateRuleNames,
  checkGrantsSomething,
  checkCatchAllDeny,
  checkMasking,
  checkRules,
];

function eachObject<T>(select: (scope: ValidationScope) => readonly T[], checks: readonly ObjectCheck<T>[]): ConfigCheck {
  return function* (context, scope) {
    for (const object of select(scope)) for (const check of checks) yield* check(object, context);
  };
}

const CONFIG_CHECKS: readonly ConfigCheck[] = [
  checkCelRules,
  eachObject((scope) => scope.identities, IDENTITY_CHECKS),
  checkIdentityClaims,
  eachObject((scope) => scope.resources, RESOURCE_CHECKS),
  checkPortConflicts,
  eachObject((scope) => scope.policies, POLICY_CHECKS),
];

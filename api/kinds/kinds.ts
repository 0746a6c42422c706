// The Gatehouse API (group gatehouse.dev, version v1alpha1): the one source of truth for the
// TypeScript types, the local validator and the generated CRDs in crds/. Field names are the
// contract in DESIGN.md; rename nothing without saying so.
import { Type, type Static } from '@sinclair/typebox';
import {
  ACCESS_REQUEST_PHASES, CREDENTIAL_STRATEGIES, DETECTORS, EFFECTS, MASKING_STRATEGIES, PROTOCOLS, RECORDING_MODES, TLS_MODES,
} from './vocabulary.js';
import { SQL_OPERATIONS } from '../sql/operations.js';
import {
  Conditions,
  Duration,
  ObjectName,
  ObjectWithRules,
  SecretReference,
  StringEnum,
} from './schema-builders.js';

export const API_GROUP = 'gatehouse.dev';
export const API_VERSION = 'v1alpha1';
export const GROUP_VERSION = `${API_GROUP}/${API_VERSION}`;

export { ACCESS_REQUEST_PHASES, CREDENTIAL_STRATEGIES, DETECTORS, EFFECTS, MASKING_STRATEGIES, PROTOCOLS, RECORDING_MODES, TLS_MODES };

// ── shared pieces ───────────────────────────────────────────────────────────────────────────────

const ObservedStatus = Type.Object(
  {
    observedGeneration: Type.Optional(
      Type.Integer({ minimum: 0, description: 'metadata.generation the controller last reconciled.' }),
    ),
    conditions: Type.Optional(Conditions),
  },
  { description: 'Observed state, written by the operator through the status subresource.' },
);

// ── NonHumanIdentity ────────────────────────────────────────────────────────────────────────────

export const OidcIdentity = Type.Object(
  {
    issuer: Type.String({
      description: 'OIDC issuer URL whose tokens identify the workload (e.g. a CI system), checked against the token iss claim.',
      pattern: '^https://[^\\s]+$',
    }),
    subject: Type.String({ description: 'Exact sub claim the workload token must carry.', minLength: 1 }),
    audience: Type.Optional(Type.String({ description: 'aud claim the token must carry.', minLength: 1, default: 'gatehouse' })),
  },
  { description: 'External workload identity verified from an OIDC token (CI OIDC federation).' },
);

export const NonHumanIdentitySpec = ObjectWithRules(
  {
    serviceAccountName: Type.Optional(
      ObjectName('In-cluster identity: pods running as this ServiceAccount in the same namespace.'),
    ),
    oidc: Type.Optional(OidcIdentity),
    groups: Type.Optional(
      Type.Array(Type.String({ pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$', maxLength: 63 }), {
        description: 'Groups this identity belongs to; AccessPolicy subjects may name a group.',
        'x-kubernetes-list-type': 'set',
      }),
    ),
    maxCredentialTTL: Type.Optional(
      Duration(
        'Upper bound on the lifetime of any credential issued to this identity; AccessPolicy credentialTTL may not exceed it.',
        '1h',
      ),
    ),
  },
  {
    description: 'Who the caller is: a ServiceAccount in the cluster, or an external workload proven by OIDC.',
    rules: [
      {
        rule: 'has(self.serviceAccountName) || has(self.oidc)',
        message: 'set serviceAccountName, oidc, or both',
      },
    ],
  },
);

// ── ProtectedResource ───────────────────────────────────────────────────────────────────────────

export type Protocol = (typeof PROTOCOLS)[number];

export const ResourceTls = ObjectWithRules(
  {
    mode: Type.Optional(
      StringEnum(TLS_MODES, {
        description: 'TLS from the sidecar to the resource: disable, prefer, require, or verify-full (certificate and host name checked).',
        default: 'prefer',
      }),
    ),
    caSecretRef: Type.Optional(
      Type.Object(
        {
          name: ObjectName('Secret holding the CA bundle.'),
          key: Type.Optional(Type.String({ description: 'Key in the Secret holding PEM certificates.', default: 'ca.crt' })),
        },
        { description: 'CA used to verify the resource certificate (verify-full).' },
      ),
    ),
    serverName: Type.Optional(
      Type.String({ description: 'Host name to verify instead of the host part of address.' }),
    ),
  },
  {
    description: 'TLS between the sidecar and the resource.',
    rules: [{ rule: "self.mode != 'verify-full' || has(self.caSecretRef)", message: 'verify-full needs caSecretRef' }],
  },
);

export const ResourceCredentials = ObjectWithRules(
  {
    strategy: StringEnum(CREDENTIAL_STRATEGIES, {
      description: 'static: the Secret credential; postgres-dynamic: a role per identity created just in time with the Secret as admin; jwt: short-lived signed tokens; none.',
    }),
    secretRef: Type.Optional(SecretReference),
  },
  {
    description: 'How the sidecar authenticates upstream. The app never sees this credential.',
    rules: [
      {
        rule: "self.strategy == 'none' || self.strategy == 'jwt' || has(self.secretRef)",
        message: 'static and postgres-dynamic credentials need secretRef',
      },
    ],
  },
);

export const ResourceSidecar = Type.Object(
  {
    port: Type.Integer({
      minimum: 1024,
      maximum: 65535,
      description: 'Port the sidecar listens on at 127.0.0.1 inside the pod; the app connects here.',
    }),
  },
  { description: 'How the app reaches the resource through its sidecar.' },
);

export const ProtectedResourceSpec = ObjectWithRules(
  {
    protocol: StringEnum(PROTOCOLS, { description: 'Wire protocol the sidecar speaks and enforces.' }),
    address: Type.String({
      minLength: 1,
      maxLength: 2048,
      description: 'Where the resource is: host:port (e.g. orders-db.payments.svc:5432), or a URL for http.',
      pattern: '^(https?://[^\\s]+|[^\\s:/]+:[0-9]{1,5}|\\[[0-9a-fA-F:.]+\\]:[0-9]{1,5})$',
    }),
    database: Type.Optional(Type.String({ minLength: 1, description: 'Database name (postgres, mysql).' })),
    tls: Type.Optional(ResourceTls),
    credentials: ResourceCredentials,
    sidecar: ResourceSidecar,
  },
  {
    description: 'What is protected and how to reach it.',
    rules: [
      {
        rule: "self.protocol != 'http' || self.address.startsWith('http://') || self.address.startsWith('https://')",
        message: 'http resources need a URL address',
      },
      {
        rule: "self.credentials.strategy != 'postgres-dynamic' || self.protocol == 'postgres'",
        message: 'postgres-dynamic credentials work only with protocol postgres',
      },
    ],
  },
);

// ── AccessPolicy ────────────────────────────────────────────────────────────────────────────────

export type Effect = (typeof EFFECTS)[number];

export const PolicySubject = ObjectWithRules(
  {
    identity: Type.Optional(ObjectName('A NonHumanIdentity in the same namespace.')),
    group: Type.Optional(Type.String({ minLength: 1, description: 'Every identity listing this group.' })),
  },
  {
    description: 'Who the policy applies to: exactly one of identity or group.',
    rules: [{ rule: 'has(self.identity) != has(self.group)', message: 'set exactly one of identity or group' }],
  },
);

export const ApprovalSettings = Type.Object(
  {
    approvers: Type.Object(
      {
        groups: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'Kubernetes user groups allowed to decide.' })),
        users: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'Kubernetes user names allowed to decide.' })),
      },
      { description: 'Who may approve; the requesting identity never may.' },
    ),
    minApprovals: Type.Optional(Type.Integer({ minimum: 1, maximum: 10, default: 1, description: 'Approvals needed (N of M).' })),
    timeout: Type.Optional(Duration('How long the statement is held before it is denied as Expired.', '5m')),
    grantWindow: Type.Optional(
      Duration('After approval the same identity may run the same statement fingerprint again for this long; absent means single use.'),
    ),
    singleUse: Type.Optional(
      Type.Boolean({ description: 'With grantWindow: the grant covers one more run (a retry) within the window, then is spent.' }),
    ),
  },
  { description: 'Human approval for require-approval rules.' },
);

export const PolicyRule = ObjectWithRules(
  {
    name: Type.Optional(
      Type.String({ pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$', maxLength: 63, description: 'Rule name shown in denials, metrics and audit; defaults to rules[INDEX].' }),
    ),
    effect: StringEnum(EFFECTS, { description: 'allow, require-approval or deny. deny > require-approval > allow.' }),
    operations: Type.Optional(
      Type.Array(StringEnum(SQL_OPERATIONS, { description: 'An operation class.' }), {
        minItems: 1,
        description: 'Operations the rule matches (read, write, delete, truncate, ddl, dcl, admin, call, transaction, session); absent matches all.',
        'x-kubernetes-list-type': 'set',
      }),
    ),
    tables: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        minItems: 1,
        description: 'Table globs (`orders`, `public.*`, `*.card_*`); a rule with tables matches only statements touching a matching table.',
      }),
    ),
    paths: Type.Optional(
      Type.Array(Type.String({ pattern: '^/', description: 'A URL path glob.' }), {
        minItems: 1,
        description: 'HTTP resources: URL path globs (`/v1/invoices/**`); GET/HEAD/OPTIONS are read, POST/PUT/PATCH write, DELETE delete.',
      }),
    ),
    unboundedWrite: Type.Optional(
      Type.Boolean({ description: 'When true the rule matches only UPDATE or DELETE without a WHERE clause.' }),
    ),
    message: Type.Optional(Type.String({ maxLength: 512, description: 'Shown to the client when this rule denies.' })),
    approval: Type.Optional(ApprovalSettings),
  },
  {
    description: 'One rule. Every matching rule counts; no match is a deny.',
    rules: [
      {
        rule: "self.effect != 'require-approval' || has(self.approval)",
        message: 'require-approval rules need approval settings',
      },
      { rule: "self.effect == 'require-approval' || !has(self.approval)", message: 'approval is only for require-approval rules' },
    ],
  },
);

export const MaskingRule = ObjectWithRules(
  {
    columns: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        description: 'Result columns to mask by name: `column` or `table.column` (globs allowed).',
      }),
    ),
    detectors: Type.Optional(
      Type.Array(StringEnum(DETECTORS, { description: 'A value detector.' }), {
        description: 'Mask any value these detectors recognise, whatever its column.',
        'x-kubernetes-list-type': 'set',
      }),
    ),
    strategy: Type.Optional(
      StringEnum(MASKING_STRATEGIES, {
        description: 'redact: replace; hash: stable keyed hash; partial: keep the last characters.',
        default: 'redact',
      }),
    ),
  },
  {
    description: 'Masks values in results that are allowed through.',
    rules: [{ rule: 'has(self.columns) || has(self.detectors)', message: 'set columns, detectors, or both' }],
  },
);

export const AccessPolicySpec = Type.Object(
  {
    subjects: Type.Array(PolicySubject, { minItems: 1, description: 'Identities and groups the policy applies to.' }),
    resources: Type.Array(ObjectName('A ProtectedResource in the same namespace.'), {
      minItems: 1,
      description: 'ProtectedResources the policy governs.',
      'x-kubernetes-list-type': 'set',
    }),
    credentialTTL: Type.Optional(
      Duration('Lifetime of credentials issued under this policy; at most the identity maxCredentialTTL.'),
    ),
    rules: Type.Array(PolicyRule, { minItems: 1, description: 'Rules; order does not matter.' }),
    masking: Type.Optional(Type.Array(MaskingRule, { description: 'Masking applied to allowed results.' })),
    recording: Type.Optional(
      Type.Object(
        {
          enabled: Type.Optional(Type.Boolean({ default: true, description: 'Record sessions for audit.' })),
          mode: Type.Optional(
            StringEnum(RECORDING_MODES, {
              default: 'async',
              description:
                'async: statements run while recording catches up. sync: statements are refused while the sidecar cannot record (its uploads to the operator are failing), for regulated resources.',
            }),
          ),
        },
        { description: 'Session recording.' },
      ),
    ),
  },
  { description: 'Who may do what on which resources.' },
);

// ── AccessRequest ───────────────────────────────────────────────────────────────────────────────


export const AccessRequestSpec = Type.Object(
  {
    identity: ObjectName('NonHumanIdentity that asked.'),
    resource: ObjectName('ProtectedResource the statement is for.'),
    policy: ObjectName('AccessPolicy whose require-approval rule matched.'),
    rule: Type.Optional(Type.String({ description: 'The matching rule.' })),
    pod: Type.Optional(Type.String({ description: 'Pod (namespace/name) whose sidecar holds the statement.' })),
    statement: Type.String({ maxLength: 65536, description: 'The statement held for a decision.' }),
    fingerprint: Type.String({ minLength: 1, description: 'Fingerprint of the statement; grant windows match on it.' }),
    reason: Type.Optional(Type.String({ description: 'Why approval is needed.' })),
    requester: Type.Optional(Type.String({ description: 'Kubernetes user of the requesting identity (system:serviceaccount:NS:SA); it may never decide.' })),
    approvers: Type.Optional(
      Type.Object(
        {
          groups: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'Groups whose members may decide.' })),
          users: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'Users who may decide.' })),
        },
        { description: 'Who may decide, copied from the rule when the request was made.' },
      ),
    ),
    requiredApprovals: Type.Optional(Type.Integer({ minimum: 1, maximum: 10, description: 'Distinct approvals needed (N of M); one denial denies.' })),
  },
  { description: 'One pending human decision, created by the operator.' },
);

export const AccessRequestStatus = Type.Object(
  {
    phase: StringEnum(ACCESS_REQUEST_PHASES, { description: 'Pending, Approved, Denied or Expired.' }),
    decidedBy: Type.Optional(Type.String({ description: 'User who made the decision.' })),
    decidedAt: Type.Optional(Type.String({ format: 'date-time', description: 'When it was decided.' })),
    expiresAt: Type.Optional(Type.String({ format: 'date-time', description: 'When a pending request expires, or a grant window ends.' })),
    reason: Type.Optional(Type.String({ description: 'Reason given with the decision.' })),
    approvals: Type.Optional(
      Type.Array(
        Type.Object(
          {
            decision: StringEnum(['approve', 'deny'] as const, { description: 'approve or deny.' }),
            user: Type.Optional(Type.String({ description: 'Who decided, set by the admission webhook from the request\'s user, never by the client.' })),
            groups: Type.Optional(Type.Array(Type.String(), { description: 'The decider\'s groups, as the API server authenticated them.' })),
            reason: Type.Optional(Type.String({ maxLength: 1024, description: 'Why.' })),
            at: Type.Optional(Type.String({ format: 'date-time', description: 'When.' })),
          },
          { description: 'One person\'s decision.' },
        ),
        { maxItems: 20, description: 'Every decision so far, in order; appended through the status subresource.' },
      ),
    ),
    conditions: Type.Optional(Conditions),
  },
  { description: 'The decision.' },
);

// ── objects ─────────────────────────────────────────────────────────────────────────────────────

export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  generation?: number;
  resourceVersion?: string;
  uid?: string;
}

interface KubeObject<K extends string, S, St> {
  apiVersion: typeof GROUP_VERSION;
  kind: K;
  metadata: ObjectMeta;
  spec: S;
  status?: St;
}

export type ObservedStatusT = Static<typeof ObservedStatus>;
export type NonHumanIdentity = KubeObject<'NonHumanIdentity', Static<typeof NonHumanIdentitySpec>, ObservedStatusT>;
export type ProtectedResource = KubeObject<'ProtectedResource', Static<typeof ProtectedResourceSpec>, ObservedStatusT>;
export type AccessPolicy = KubeObject<'AccessPolicy', Static<typeof AccessPolicySpec>, ObservedStatusT>;
export type AccessRequest = KubeObject<'AccessRequest', Static<typeof AccessRequestSpec>, Static<typeof AccessRequestStatus>>;
export type PolicyRuleT = Static<typeof PolicyRule>;
export type MaskingRuleT = Static<typeof MaskingRule>;
export type PolicySubjectT = Static<typeof PolicySubject>;
export type GatehouseObject = NonHumanIdentity | ProtectedResource | AccessPolicy | AccessRequest;
export type GatehouseKind = GatehouseObject['kind'];

export interface PrinterColumn {
  readonly name: string;
  readonly type: 'string' | 'integer' | 'date' | 'boolean';
  readonly jsonPath: string;
  readonly description: string;
  readonly priority?: number;
}

export interface KindDefinition {
  readonly kind: GatehouseKind;
  readonly plural: string;
  readonly singular: string;
  readonly shortNames: readonly string[];
  readonly description: string;
  readonly spec: ReturnType<typeof Type.Object>;
  readonly status: ReturnType<typeof Type.Object>;
  readonly printerColumns: readonly PrinterColumn[];
}

const READY_COLUMN: PrinterColumn = {
  name: 'Ready',
  type: 'string',
  jsonPath: '.status.conditions[?(@.type=="Ready")].status',
  description: 'Whether the operator accepted the object.',
};
const AGE_COLUMN: PrinterColumn = {
  name: 'Age',
  type: 'date',
  jsonPath: '.metadata.creationTimestamp',
  description: 'Time since creation.',
};

export const KINDS: readonly KindDefinition[] = [
  {
    kind: 'NonHumanIdentity',
    plural: 'nonhumanidentities',
    singular: 'nonhumanidentity',
    shortNames: ['nhi'],
    description: 'A non-human caller (ServiceAccount, CI job, bot) whose connections Gatehouse governs.',
    spec: NonHumanIdentitySpec,
    status: ObservedStatus,
    printerColumns: [
      { name: 'ServiceAccount', type: 'string', jsonPath: '.spec.serviceAccountName', description: 'In-cluster ServiceAccount.' },
      { name: 'Groups', type: 'string', jsonPath: '.spec.groups', description: 'Groups.' },
      { name: 'Max-TTL', type: 'string', jsonPath: '.spec.maxCredentialTTL', description: 'Longest credential lifetime.' },
      READY_COLUMN,
      AGE_COLUMN,
    ],
  },
  {
    kind: 'ProtectedResource',
    plural: 'protectedresources',
    singular: 'protectedresource',
    shortNames: ['pres'],
    description: 'A database, API, cluster or host reached only through the Gatehouse sidecar.',
    spec: ProtectedResourceSpec,
    status: ObservedStatus,
    printerColumns: [
      { name: 'Protocol', type: 'string', jsonPath: '.spec.protocol', description: 'Wire protocol.' },
      { name: 'Address', type: 'string', jsonPath: '.spec.address', description: 'Upstream address.' },
      { name: 'Port', type: 'integer', jsonPath: '.spec.sidecar.port', description: 'Sidecar port in the pod.' },
      { name: 'Credentials', type: 'string', jsonPath: '.spec.credentials.strategy', description: 'Credential strategy.' },
      READY_COLUMN,
      AGE_COLUMN,
    ],
  },
  {
    kind: 'AccessPolicy',
    plural: 'accesspolicies',
    singular: 'accesspolicy',
    shortNames: ['ap', 'gap'],
    description: 'Who may do what on which protected resources: allow, require-approval and deny rules, masking, recording.',
    spec: AccessPolicySpec,
    status: ObservedStatus,
    printerColumns: [
      { name: 'Identities', type: 'string', jsonPath: '.spec.subjects[*].identity', description: 'Subject identities.' },
      { name: 'Groups', type: 'string', jsonPath: '.spec.subjects[*].group', description: 'Subject groups.' },
      { name: 'Resources', type: 'string', jsonPath: '.spec.resources', description: 'Governed resources.' },
      READY_COLUMN,
      AGE_COLUMN,
    ],
  },
  {
    kind: 'AccessRequest',
    plural: 'accessrequests',
    singular: 'accessrequest',
    shortNames: ['areq'],
    description: 'A statement held by a sidecar for a human decision.',
    spec: AccessRequestSpec,
    status: AccessRequestStatus,
    printerColumns: [
      { name: 'Identity', type: 'string', jsonPath: '.spec.identity', description: 'Requesting identity.' },
      { name: 'Resource', type: 'string', jsonPath: '.spec.resource', description: 'Target resource.' },
      { name: 'Phase', type: 'string', jsonPath: '.status.phase', description: 'Decision state.' },
      { name: 'Decided-By', type: 'string', jsonPath: '.status.decidedBy', description: 'Who decided.' },
      { name: 'Statement', type: 'string', jsonPath: '.spec.statement', description: 'Held statement.', priority: 1 },
      AGE_COLUMN,
    ],
  },
];

export function kindDefinition(kind: string): KindDefinition | undefined {
  return KINDS.find((definition) => definition.kind === kind);
}

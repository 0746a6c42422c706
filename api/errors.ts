// The one registry of Gatehouse error codes. Every error a user can meet has a stable GH_ERR_* code
// and a message that says what to do; code branches on `code`, never on message text.

export interface ErrorCodeInfo {
  /** What went wrong, in a sentence a user can act on. `{name}` placeholders are filled from details. */
  readonly message: string;
}

export const ERROR_CODES = {
  GH_ERR_INVALID_ARGUMENT: { message: 'Invalid argument: {detail}' },
  GH_ERR_USAGE: { message: '{detail}. Run `gatehouse --help` for usage.' },
  GH_ERR_CONFIG_DIR_NOT_FOUND: { message: 'Config folder {path} does not exist or is not a folder; pass a folder of YAML manifests.' },
  GH_ERR_MANIFEST_YAML: { message: 'YAML syntax error: {detail}. Fix the YAML so it parses.' },
  GH_ERR_MANIFEST_NOT_OBJECT: { message: 'Document is not a Kubernetes object (expected a mapping with apiVersion, kind and metadata).' },
  GH_ERR_MANIFEST_UNKNOWN_KIND: { message: 'Unknown kind {kind} in {apiVersion}; expected one of {expected}.' },
  GH_ERR_MANIFEST_API_VERSION: { message: 'apiVersion {apiVersion} is not served for {kind}; use {expected}.' },
  GH_ERR_MANIFEST_SCHEMA: { message: '{detail}' },
  GH_ERR_MANIFEST_DUPLICATE: { message: '{kind} {name} is defined twice (also in {other}); names must be unique per kind and namespace.' },
  GH_ERR_REF_UNKNOWN_RESOURCE: { message: 'ProtectedResource {name} does not exist in namespace {namespace}; create it or fix the name.' },
  GH_ERR_REF_UNKNOWN_IDENTITY: { message: 'NonHumanIdentity {name} does not exist in namespace {namespace}; create it or fix the name.' },
  GH_ERR_REF_UNKNOWN_SECRET: { message: 'Secret {name} does not exist in namespace {namespace}; the credential strategy {strategy} needs it.' },
  GH_ERR_REF_SECRET_KEYS: { message: 'Secret {name} lacks key(s) {keys}; credentials secrets hold `username` and `password`.' },
  GH_ERR_TTL_ABOVE_MAXIMUM: { message: 'credentialTTL {ttl} exceeds maxCredentialTTL {max} of identity {identity}; lower the TTL or raise the identity maximum.' },
  GH_ERR_BAD_GLOB: { message: 'Invalid glob {glob}: {detail}.' },
  GH_ERR_BAD_DURATION: { message: 'Invalid duration {value}; use a number with a unit, like 90s, 15m or 1h30m.' },
  GH_ERR_POLICY_RULE_INCONSISTENT: { message: '{detail}' },
  GH_ERR_PORT_CONFLICT: { message: 'sidecar port {port} is used by both {first} and {second}; each ProtectedResource needs its own sidecar port.' },
  GH_ERR_SQL_UNPARSABLE: { message: 'Statement could not be parsed as PostgreSQL ({detail}); unparsable statements are denied.' },
  GH_ERR_SQL_EMPTY: { message: 'Empty statement: nothing to classify.' },
  GH_ERR_POLICY_TEST_FILE: { message: 'Policy test file is invalid: {detail}.' },
  GH_ERR_POLICY_TEST_REF: { message: 'Policy test names {kind} {name}, which is not in the config folder.' },
} as const satisfies Record<string, ErrorCodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;

export type ErrorDetails = Readonly<Record<string, string | number | boolean | undefined>>;

/** Fills `{name}` placeholders; unknown ones stay visible so a missing detail is noticed, not hidden. */
export function formatErrorMessage(code: ErrorCode, details: ErrorDetails = {}): string {
  return ERROR_CODES[code].message.replace(/\{(\w+)\}/g, (whole, key: string) => {
    const value = details[key];
    return value === undefined ? whole : String(value);
  });
}

export class GatehouseError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super(formatErrorMessage(code, details), options);
    this.name = 'GatehouseError';
    this.code = code;
    this.details = details;
  }
}

export function isGatehouseError(value: unknown, code?: ErrorCode): value is GatehouseError {
  return value instanceof GatehouseError && (code === undefined || value.code === code);
}

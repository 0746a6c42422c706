// The closed vocabularies of the API (protocols, TLS modes, effects, detectors ...), as plain
// constants. The kinds' schemas in kinds.ts are built from them; the sidecar imports them from here
// so it does not load the schema library just to know a detector's name.

export const PROTOCOLS = ['postgres', 'mysql', 'http', 'kubernetes', 'ssh', 'tcp'] as const;
export const TLS_MODES = ['disable', 'prefer', 'require', 'verify-full'] as const;
export const CREDENTIAL_STRATEGIES = ['static', 'postgres-dynamic', 'jwt', 'none'] as const;
export const EFFECTS = ['allow', 'require-approval', 'deny'] as const;
export const DETECTORS = [
  'credit-card',
  'email',
  'iban',
  'us-ssn',
  'jwt',
  'cloud-access-key',
  'private-key',
] as const;
export const MASKING_STRATEGIES = ['redact', 'hash', 'partial'] as const;
export const RECORDING_MODES = ['async', 'sync'] as const;
export const ACCESS_REQUEST_PHASES = ['Pending', 'Approved', 'Denied', 'Expired'] as const;

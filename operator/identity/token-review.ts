// The in-cluster alternative to offline verification: ask the API server (TokenReview) whether a
// sidecar's token is valid for audience `gatehouse`. Unlike the JWKS check it also notices tokens
// whose pod or ServiceAccount was deleted. Every failure, of the token or of the review, refuses.
import { GatehouseError } from '../../api/errors.js';
import { checkedUrl, parseJson, sendRequest, type HttpResponse } from './https-client.js';
import { readUnverifiedToken } from './unverified-token.js';
import {
  GATEHOUSE_AUDIENCE,
  isObjectName,
  parseServiceAccountUsername,
  type PodReference,
  type ServiceAccountVerifier,
  type ServiceAccountWorkload,
} from './workload-identity.js';

export interface TokenReviewVerifierOptions {
  /** The API server, e.g. https://kubernetes.default.svc. https only: the request carries two tokens. */
  readonly server: string | URL;
  /** PEM CA bundle of the API server (in cluster: the ServiceAccount's ca.crt). */
  readonly ca?: string | Buffer;
  /** The operator's own token; called per review so the kubelet's rotation is picked up. */
  readonly bearerToken: () => string | Promise<string>;
  /** Default `gatehouse`. */
  readonly audience?: string;
  /** Deadline for one review; default 5000 ms. */
  readonly timeoutMs?: number;
  /** Require the API server to name the pod the token is bound to. Default true. */
  readonly requirePod?: boolean;
  readonly now?: () => Date;
}

export const TOKEN_REVIEW_PATH = '/apis/authentication.k8s.io/v1/tokenreviews';
const POD_NAME_EXTRA = 'authentication.kubernetes.io/pod-name';
const POD_UID_EXTRA = 'authentication.kubernetes.io/pod-uid';

interface TokenReviewStatus {
  readonly authenticated?: unknown;
  readonly audiences?: unknown;
  readonly error?: unknown;
  readonly user?: { readonly username?: unknown; readonly uid?: unknown; readonly extra?: unknown };
}

export function createTokenReviewVerifier(options: TokenReviewVerifierOptions): ServiceAccountVerifier {
  // Checked here so a plain-http server fails at startup, not on the first sidecar.
  const url = checkedUrl(new URL(TOKEN_REVIEW_PATH, options.server));
  const audience = options.audience ?? GATEHOUSE_AUDIENCE;
  const now = options.now ?? (() => new Date());
  return {
    async verify(token: string): Promise<ServiceAccountWorkload> {
      // Only to read exp (TokenReview does not return it) and to spare the API server junk; the
      // claims are used only after the API server has vouched for this very token.
      const { claims } = readUnverifiedToken(token);
      const status = await review(url, token, audience, options);
      const workload = workloadFromStatus(status, token, audience, options.requirePod ?? true);
      return { ...workload, expiresAt: expiryOf(claims.exp, now()) };
    },
  };
}

async function review(url: URL, token: string, audience: string, options: TokenReviewVerifierOptions): Promise<TokenReviewStatus> {
  const body = JSON.stringify({
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenReview',
    spec: { token, audiences: [audience] },
  });
  let response: HttpResponse;
  try {
    response = await sendRequest(
      url,
      { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body },
      { ca: options.ca, bearerToken: options.bearerToken, timeoutMs: options.timeoutMs },
    );
  } catch (error) {
    throw reviewFailed(url, error instanceof Error ? error.message : 'request failed', error);
  }
  return statusOf(url, response);
}

function statusOf(url: URL, response: HttpResponse): TokenReviewStatus {
  if (response.status === 401 || response.status === 403) {
    throw new GatehouseError('GH_ERR_TOKEN_REVIEW_FORBIDDEN', { server: url.origin, status: response.status });
  }
  if (response.status !== 200 && response.status !== 201) throw reviewFailed(url, `HTTP ${response.status}`);
  let review: unknown;
  try {
    review = parseJson(response.body);
  } catch (error) {
    throw reviewFailed(url, 'the answer is not JSON', error);
  }
  const status = typeof review === 'object' && review !== null ? (review as { status?: unknown }).status : undefined;
  if (typeof status !== 'object' || status === null) throw reviewFailed(url, 'the answer has no TokenReview status');
  return status as TokenReviewStatus;
}

function reviewFailed(url: URL, detail: string, cause?: unknown): GatehouseError {
  return new GatehouseError('GH_ERR_TOKEN_REVIEW_FAILED', { server: url.origin, detail }, { cause });
}

function workloadFromStatus(status: TokenReviewStatus, token: string, audience: string, requirePod: boolean): Omit<ServiceAccountWorkload, 'expiresAt'> {
  if (status.authenticated !== true) {
    throw new GatehouseError('GH_ERR_TOKEN_REVIEW_UNAUTHENTICATED', { reason: reviewError(status.error, token) });
  }
  // An empty status.audiences means "valid for the API server itself", not for us (TokenReview docs).
  if (!Array.isArray(status.audiences) || !status.audiences.includes(audience)) {
    throw new GatehouseError('GH_ERR_TOKEN_AUDIENCE', { audience });
  }
  const username = typeof status.user?.username === 'string' ? status.user.username : '';
  const account = parseServiceAccountUsername(username);
  if (!account) throw new GatehouseError('GH_ERR_TOKEN_NOT_SERVICE_ACCOUNT', { username: username || '(no username)' });
  const serviceAccountUid = status.user?.uid;
  if (typeof serviceAccountUid !== 'string' || serviceAccountUid.length === 0) throw missingUserField('user.uid');
  const pod = podFromExtra(status.user?.extra, requirePod);
  return { kind: 'serviceaccount', ...account, serviceAccountUid, ...(pod ? { pod } : {}) };
}

function podFromExtra(extra: unknown, required: boolean): PodReference | undefined {
  const values = typeof extra === 'object' && extra !== null ? (extra as Record<string, unknown>) : {};
  const name = singleValue(values[POD_NAME_EXTRA]);
  const uid = singleValue(values[POD_UID_EXTRA]);
  if (name === undefined && uid === undefined && !required) return undefined;
  if (!isObjectName(name)) throw missingUserField(`user.extra["${POD_NAME_EXTRA}"]`);
  if (uid === undefined || uid.length === 0) throw missingUserField(`user.extra["${POD_UID_EXTRA}"]`);
  return { name, uid };
}

function singleValue(value: unknown): string | undefined {
  return Array.isArray(value) && value.length === 1 && typeof value[0] === 'string' ? value[0] : undefined;
}

function missingUserField(claim: string): GatehouseError {
  return new GatehouseError('GH_ERR_TOKEN_CLAIMS', {
    claim,
    reason: 'missing from the TokenReview answer',
    hint: 'present a projected ServiceAccount token, which Kubernetes binds to the pod',
  });
}

// The API server's reason helps whoever debugs a refusal, but it is passed on only if it cannot
// carry the token and is short.
function reviewError(error: unknown, token: string): string {
  if (typeof error !== 'string' || error.length === 0 || error.includes(token)) return '';
  const cleaned = error.replace(/eyJ[\w-]*\.[\w.-]*/g, '[token]').replace(/[^\x20-\x7e]/g, '?');
  return ` (${cleaned.length > 200 ? `${cleaned.slice(0, 200)}…` : cleaned})`;
}

function expiryOf(exp: unknown, now: Date): Date {
  if (typeof exp !== 'number') {
    throw new GatehouseError('GH_ERR_TOKEN_CLAIMS', {
      claim: 'exp',
      reason: 'missing',
      hint: 'legacy Secret-based ServiceAccount tokens never expire and are not accepted; use a projected token',
    });
  }
  const expiresAt = new Date(exp * 1000);
  // The API server just accepted it, so a past exp means our clock and its clock disagree.
  if (expiresAt <= now) throw new GatehouseError('GH_ERR_TOKEN_EXPIRED', { detail: `at ${expiresAt.toISOString()}` });
  return expiresAt;
}

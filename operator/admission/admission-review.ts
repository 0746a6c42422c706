// The AdmissionReview (admission.k8s.io/v1) wire format: checking what the API server sent and
// building the answer (uid echoed, allowed, a base64 JSON patch, status on denial, warnings).
import { randomUUID } from 'node:crypto';
import { GatehouseError } from '../../api/errors.js';
import type { JsonPatchOperation } from './json-patch.js';

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';

export type AdmissionOperation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
const OPERATIONS: ReadonlySet<string> = new Set(['CREATE', 'UPDATE', 'DELETE', 'CONNECT']);

export interface GroupVersionKind {
  readonly group: string;
  readonly version: string;
  readonly kind: string;
}

export interface AdmissionRequest {
  readonly uid: string;
  readonly kind: GroupVersionKind;
  readonly operation: AdmissionOperation;
  readonly name?: string;
  readonly namespace?: string;
  readonly subResource?: string;
  readonly dryRun?: boolean;
  readonly userInfo?: { readonly username?: string; readonly groups?: readonly string[] };
  readonly object?: unknown;
  readonly oldObject?: unknown;
}

export interface AdmissionStatus {
  readonly code: number;
  readonly reason?: string;
  readonly message: string;
}

export interface AdmissionResponse {
  readonly uid: string;
  readonly allowed: boolean;
  readonly status?: AdmissionStatus;
  readonly patchType?: 'JSONPatch';
  /** base64 of the JSON patch. */
  readonly patch?: string;
  readonly warnings?: string[];
}

export interface AdmissionReviewResponse {
  readonly apiVersion: typeof ADMISSION_API_VERSION;
  readonly kind: 'AdmissionReview';
  readonly response: AdmissionResponse;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function malformed(detail: string): GatehouseError {
  return new GatehouseError('GH_ERR_ADMISSION_BAD_REQUEST', { detail });
}

function parseKind(value: unknown): GroupVersionKind {
  if (!isRecord(value) || typeof value.kind !== 'string' || typeof value.version !== 'string') {
    throw malformed('request.kind must be {group, version, kind}');
  }
  return { group: typeof value.group === 'string' ? value.group : '', version: value.version, kind: value.kind };
}

function optionalString(request: Record<string, unknown>, field: string): string | undefined {
  const value = request[field];
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string') throw malformed(`request.${field} must be a string`);
  return value;
}

/** Parses and checks an AdmissionReview body; throws GH_ERR_ADMISSION_BAD_REQUEST saying what is wrong. */
export function parseAdmissionReview(body: string): AdmissionRequest {
  let review: unknown;
  try {
    review = JSON.parse(body);
  } catch (error) {
    throw malformed(`the body is not JSON (${(error as Error).message})`);
  }
  if (!isRecord(review)) throw malformed('the body is not a JSON object');
  if (review.kind !== 'AdmissionReview') throw malformed(`kind is ${JSON.stringify(review.kind)}, not AdmissionReview`);
  if (review.apiVersion !== ADMISSION_API_VERSION) {
    throw malformed(`apiVersion ${JSON.stringify(review.apiVersion)} is not served; set admissionReviewVersions: [v1] in the webhook configuration`);
  }
  const request = review.request;
  if (!isRecord(request)) throw malformed('request is missing');
  if (typeof request.uid !== 'string' || request.uid === '') throw malformed('request.uid is missing');
  if (typeof request.operation !== 'string' || !OPERATIONS.has(request.operation)) {
    throw malformed(`request.operation ${JSON.stringify(request.operation)} is not CREATE, UPDATE, DELETE or CONNECT`);
  }
  const operation = request.operation as AdmissionOperation;
  if ((operation === 'CREATE' || operation === 'UPDATE') && !isRecord(request.object)) {
    throw malformed(`request.object is missing for ${operation}`);
  }
  const name = optionalString(request, 'name');
  const namespace = optionalString(request, 'namespace');
  const subResource = optionalString(request, 'subResource');
  return {
    uid: request.uid,
    kind: parseKind(request.kind),
    operation,
    ...(name === undefined ? {} : { name }),
    ...(namespace === undefined ? {} : { namespace }),
    ...(subResource === undefined ? {} : { subResource }),
    ...(request.dryRun === true ? { dryRun: true } : {}),
    ...(isRecord(request.userInfo) ? { userInfo: userInfoOf(request.userInfo) } : {}),
    ...(request.object === undefined || request.object === null ? {} : { object: request.object }),
    ...(request.oldObject === undefined || request.oldObject === null ? {} : { oldObject: request.oldObject }),
  };
}

/** Who made the request, as the API server authenticated them; groups decide who may approve. */
function userInfoOf(userInfo: Record<string, unknown>): { username: string; groups: string[] } {
  const groups = Array.isArray(userInfo.groups) ? userInfo.groups.filter((group): group is string => typeof group === 'string') : [];
  return { username: String(userInfo.username ?? ''), groups };
}

export function reviewOf(response: AdmissionResponse): AdmissionReviewResponse {
  return { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response };
}

export function allow(uid: string, options: { patch?: readonly JsonPatchOperation[]; warnings?: readonly string[] } = {}): AdmissionResponse {
  const patch = options.patch && options.patch.length > 0
    ? { patchType: 'JSONPatch' as const, patch: base64Utf8(JSON.stringify(options.patch)) }
    : {};
  const warnings = options.warnings && options.warnings.length > 0 ? { warnings: [...options.warnings] } : {};
  const response: AdmissionResponse = { uid, allowed: true, ...patch, ...warnings };
  if (response.patch !== undefined) ENCODED_PATCHES.add(response);
  return response;
}

/**
 * base64 of the text's UTF-8 bytes. An ASCII text (the usual patch) goes through btoa, which encodes
 * it without the intermediate Buffer; its UTF-8 length equals its length exactly when every code unit
 * is below 0x80, and only then are btoa's Latin-1 bytes the UTF-8 bytes.
 */
export function base64Utf8(text: string): string {
  return Buffer.byteLength(text, 'utf8') === text.length ? btoa(text) : Buffer.from(text, 'utf8').toString('base64');
}

/** Responses allow() built, whose patch is base64 it encoded itself: no need to check it for characters JSON escapes. */
const ENCODED_PATCHES = new WeakSet<AdmissionResponse>();
const REVIEW_PREFIX = `{"apiVersion":"${ADMISSION_API_VERSION}","kind":"AdmissionReview","response":`;

/**
 * The answer's JSON text, byte for byte what JSON.stringify(reviewOf(response)) gives for the
 * responses allow and deny build (same key order), written without JSON.stringify scanning the
 * patch: a base64 text has no character JSON escapes, and it is the largest part of an answer.
 * Any other response goes through JSON.stringify.
 */
export function encodeAdmissionReview(response: AdmissionResponse): string {
  const { patch } = response;
  if (patch === undefined || !ENCODED_PATCHES.has(response)) return JSON.stringify(reviewOf(response));
  let text = `${REVIEW_PREFIX}{"uid":${JSON.stringify(response.uid)},"allowed":${response.allowed ? 'true' : 'false'}`;
  if (response.status !== undefined) text += `,"status":${JSON.stringify(response.status)}`;
  if (response.patchType !== undefined) text += `,"patchType":${JSON.stringify(response.patchType)}`;
  text += `,"patch":"${patch}"`;
  if (response.warnings !== undefined) text += `,"warnings":${JSON.stringify(response.warnings)}`;
  return `${text}}}`;
}

/** A denial: 403 for what policy or validation refuses, 500 for "could not decide" (fail closed). */
export function deny(uid: string, message: string, code = 403, warnings: readonly string[] = []): AdmissionResponse {
  const reason = code === 403 ? 'Forbidden' : code === 400 ? 'BadRequest' : 'InternalError';
  return { uid, allowed: false, status: { code, reason, message }, ...(warnings.length > 0 ? { warnings: [...warnings] } : {}) };
}

/** Who asks for a pod creation in a synthetic review. */
export interface ReviewUser {
  readonly username: string;
  readonly groups: readonly string[];
}

/**
 * The AdmissionReview the API server sends for creating `pod` in `namespace`: what the operator's
 * admission warm-up and the webhook benchmark send in place of a real API server.
 */
export function podCreationReview<Pod extends { readonly metadata?: { readonly name?: string } }>(namespace: string, pod: Pod, userInfo: ReviewUser): string {
  return JSON.stringify({
    apiVersion: ADMISSION_API_VERSION,
    kind: 'AdmissionReview',
    request: {
      uid: randomUUID(),
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      requestKind: { group: '', version: 'v1', kind: 'Pod' },
      requestResource: { group: '', version: 'v1', resource: 'pods' },
      name: pod.metadata?.name,
      namespace,
      operation: 'CREATE',
      userInfo,
      object: { apiVersion: 'v1', kind: 'Pod', ...pod, metadata: { ...pod.metadata, namespace } },
      oldObject: null,
      dryRun: false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' },
    },
  });
}

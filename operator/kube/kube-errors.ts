// Turns Kubernetes API failures into GatehouseErrors with stable codes, keeping the HTTP status in
// details.status so callers branch on the code or the status (404, 409, 410, 422, 429), never on text.
import { GatehouseError, isGatehouseError, type ErrorCode } from '../../api/errors.js';

/** Where a request went, for messages: the verb, the resource (plural[.group]) and the object. */
export interface KubeRequestContext {
  readonly verb: string;
  readonly resource: string;
  readonly namespace?: string;
  readonly name?: string;
  readonly server: string;
}

/** The fields of a metav1.Status body that we use; anything else the server sends is ignored. */
export interface KubeStatusBody {
  readonly message?: string;
  readonly reason?: string;
  readonly code?: number;
}

const CODE_BY_STATUS: Readonly<Record<number, ErrorCode>> = {
  401: 'GH_ERR_KUBE_UNAUTHORIZED',
  403: 'GH_ERR_KUBE_FORBIDDEN',
  404: 'GH_ERR_KUBE_NOT_FOUND',
  409: 'GH_ERR_KUBE_CONFLICT',
  410: 'GH_ERR_KUBE_GONE',
  422: 'GH_ERR_KUBE_INVALID',
  429: 'GH_ERR_KUBE_THROTTLED',
};

function where(context: KubeRequestContext): string {
  return context.namespace === undefined ? '' : ` in namespace ${context.namespace}`;
}

/** Reads a Status out of an error body, tolerating bodies that are not Status objects. */
export function statusBody(body: unknown): KubeStatusBody {
  if (typeof body !== 'object' || body === null) return {};
  const record = body as Record<string, unknown>;
  return {
    message: typeof record.message === 'string' ? record.message : undefined,
    reason: typeof record.reason === 'string' ? record.reason : undefined,
    code: typeof record.code === 'number' ? record.code : undefined,
  };
}

/** The error for an HTTP answer that is not a success, or for an ERROR event carrying a Status. */
export function httpStatusError(status: number, body: KubeStatusBody, context: KubeRequestContext): GatehouseError {
  const code = CODE_BY_STATUS[status] ?? 'GH_ERR_KUBE_REQUEST_FAILED';
  return new GatehouseError(code, {
    status,
    reason: body.reason ?? '',
    detail: body.message ?? 'no message',
    verb: context.verb,
    resource: context.resource,
    name: context.name ?? '',
    namespace: context.namespace,
    where: where(context),
    server: context.server,
  });
}

/** The HTTP status a Kubernetes API error carries, if it is one. */
export function kubeErrorStatus(error: unknown): number | undefined {
  if (!isGatehouseError(error)) return undefined;
  const status = error.details.status;
  return typeof status === 'number' ? status : undefined;
}

export const isNotFound = (error: unknown): boolean => kubeErrorStatus(error) === 404;
export const isConflict = (error: unknown): boolean => kubeErrorStatus(error) === 409;
export const isGone = (error: unknown): boolean => kubeErrorStatus(error) === 410;
export const isInvalid = (error: unknown): boolean => kubeErrorStatus(error) === 422;
export const isThrottled = (error: unknown): boolean => kubeErrorStatus(error) === 429;

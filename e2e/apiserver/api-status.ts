// Kubernetes Status objects: every failure the loopback API server answers is one of these, shaped as
// the real server's (reason, code, details.causes) so kubectl and client libraries print them as usual.

export interface StatusCause {
  readonly reason: string;
  readonly message: string;
  readonly field?: string;
}

export interface StatusBody {
  readonly kind: 'Status';
  readonly apiVersion: 'v1';
  readonly metadata: Record<string, never>;
  readonly status: 'Failure' | 'Success';
  readonly message: string;
  readonly reason: string;
  readonly details?: { name?: string; group?: string; kind?: string; causes?: StatusCause[]; retryAfterSeconds?: number };
  readonly code: number;
}

/** A failure that the router turns into an HTTP response carrying a Status body. */
export class ApiStatusError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: StatusBody['details'],
  ) {
    super(message);
  }

  toStatus(): StatusBody {
    return {
      kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure',
      message: this.message, reason: this.reason, ...(this.details === undefined ? {} : { details: this.details }), code: this.code,
    };
  }
}

export interface ResourceRef {
  readonly group: string;
  readonly plural: string;
  readonly kind: string;
}

function qualified(ref: ResourceRef): string {
  return ref.group === '' ? ref.plural : `${ref.plural}.${ref.group}`;
}

export const notFound = (ref: ResourceRef, name: string): ApiStatusError =>
  new ApiStatusError(404, 'NotFound', `${qualified(ref)} "${name}" not found`, { name, group: ref.group, kind: ref.plural });

export const alreadyExists = (ref: ResourceRef, name: string): ApiStatusError =>
  new ApiStatusError(409, 'AlreadyExists', `${qualified(ref)} "${name}" already exists`, { name, group: ref.group, kind: ref.plural });

export const conflict = (ref: ResourceRef, name: string): ApiStatusError =>
  new ApiStatusError(409, 'Conflict', `Operation cannot be fulfilled on ${qualified(ref)} "${name}": the object has been modified; please apply your changes to the latest version and try again`, { name, group: ref.group, kind: ref.plural });

export const badRequest = (message: string): ApiStatusError => new ApiStatusError(400, 'BadRequest', message);

export const gone = (message: string): ApiStatusError => new ApiStatusError(410, 'Expired', message);

/** 422 with one cause per field, the way `kubectl apply` lists schema violations. */
export function invalid(ref: ResourceRef, name: string, causes: StatusCause[]): ApiStatusError {
  const summary = causes.map((cause) => (cause.field === undefined ? cause.message : `${cause.field}: ${cause.message}`)).join(', ');
  return new ApiStatusError(422, 'Invalid', `${ref.kind} "${name}" is invalid: ${causes.length > 1 ? `[${summary}]` : summary}`, {
    name, group: ref.group, kind: ref.kind, causes,
  });
}

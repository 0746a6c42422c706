// Turns what can go wrong on the way to an upstream PostgreSQL into GatehouseErrors, and keeps
// credentials out of them: error text ends up in logs, audit events and client-facing messages.
import { isIP } from 'node:net';
import { GatehouseError } from '../../../api/errors.js';
import { noticeFromFields } from '../protocol/notice-fields.js';

/** The step an upstream connection is in; decides how a socket failure is reported. */
export type UpstreamPhase = 'connect' | 'tls' | 'authentication' | 'session start' | 'cancel';

const REDACTED = '[REDACTED]';

/** host:port, with brackets around IPv6 literals. */
export function formatAddress(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Replaces every occurrence of each non-empty secret in `text`. */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  let redacted = text;
  for (const secret of secrets) {
    if (secret !== '') redacted = redacted.split(secret).join(REDACTED);
  }
  return redacted;
}

export interface RejectionContext {
  readonly address: string;
  readonly user: string;
  /** Strings that must never appear in the error (password and its equivalents). */
  readonly secrets: readonly string[];
}

/**
 * An ErrorResponse during startup (wrong password, unknown database, too many connections ...).
 * Carries SQLSTATE and the server's words, scrubbed of secrets in case a server echoes one.
 */
export function rejectedError(fields: ReadonlyMap<string, string>, context: RejectionContext): GatehouseError {
  const notice = noticeFromFields(fields);
  const scrub = (text: string | undefined) => (text === undefined ? undefined : redactSecrets(text, context.secrets));
  return new GatehouseError('GH_ERR_PG_UPSTREAM_REJECTED', {
    address: context.address,
    user: context.user,
    sqlstate: notice.code,
    severity: notice.severityNonLocalized ?? notice.severity,
    serverMessage: scrub(notice.message),
    serverDetail: scrub(notice.detail),
    serverHint: scrub(notice.hint),
  });
}

/** Maps a socket failure to the code for the phase it happened in; GatehouseErrors pass through. */
export function upstreamSocketError(error: unknown, address: string, phase: UpstreamPhase): GatehouseError {
  if (error instanceof GatehouseError) return error;
  const detail = describeSystemError(error);
  if (phase === 'connect') return new GatehouseError('GH_ERR_PG_UPSTREAM_CONNECT', { address, detail }, { cause: error });
  if (phase === 'tls') return new GatehouseError('GH_ERR_PG_UPSTREAM_TLS', { address, detail }, { cause: error });
  return new GatehouseError('GH_ERR_PG_UPSTREAM_CLOSED', { address, phase, detail }, { cause: error });
}

export function closedError(address: string, phase: UpstreamPhase): GatehouseError {
  return new GatehouseError('GH_ERR_PG_UPSTREAM_CLOSED', { address, phase });
}

export function protocolError(address: string, phase: UpstreamPhase, detail: string): GatehouseError {
  return new GatehouseError('GH_ERR_PG_UPSTREAM_PROTOCOL', { address, phase, detail });
}

function describeSystemError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as NodeJS.ErrnoException).code;
  return code !== undefined && !error.message.includes(code) ? `${code}: ${error.message}` : error.message;
}

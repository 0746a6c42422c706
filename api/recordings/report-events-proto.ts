// Typed messages of the ReportEvents RPC (gatehouse/v1/discovery.proto): how sidecars upload
// session events to the operator. The service is loaded once by loadDiscoveryProto; this module
// only names the method's message types, so the store's handler and the sidecar's uploader share them.
import type { MethodDefinition } from '@grpc/proto-loader';
import { GatehouseError } from '../errors.js';
import { SERVICE_NAME, type DiscoveryProto, type ErrorDetailMessage, type NodeMessage } from '../proto/discovery-proto.js';

export const REPORT_EVENTS_PATH = `/${SERVICE_NAME}/ReportEvents`;

export interface SessionInfoMessage {
  readonly identity: string;
  readonly resource: string;
  readonly protocol: string;
  readonly started_at: string;
}

/** A SessionEventBatch as received: scalars always present, absent messages null. */
export interface SessionEventBatchMessage {
  readonly node: NodeMessage | null;
  readonly session_id: string;
  readonly session: SessionInfoMessage | null;
  /** JSON lines, one event each: see EventLineFields. */
  readonly events: Buffer;
}

/** What each line of SessionEventBatch.events holds. */
export interface EventLineFields {
  readonly seq: number;
  readonly at: string;
  readonly type: string;
  /** The event's other fields: a JSON object. */
  readonly payload: unknown;
}

export interface SessionProgressMessage {
  readonly session_id: string;
  readonly stored_through_seq: number;
  readonly error: ErrorDetailMessage | null;
}

export interface EventAckMessage {
  readonly sessions: readonly SessionProgressMessage[];
}

/** What a sender writes: fields left out get their proto3 defaults. */
export type SessionEventBatchInit = Partial<Omit<SessionEventBatchMessage, 'node' | 'session' | 'events'>> & {
  readonly node?: Partial<NodeMessage> | null;
  readonly session?: SessionInfoMessage | null;
  readonly events?: Uint8Array;
};
export interface EventAckInit {
  readonly sessions?: readonly (Omit<SessionProgressMessage, 'error'> & { readonly error?: ErrorDetailMessage | null })[];
}

export type ReportEventsMethod = MethodDefinition<SessionEventBatchInit, EventAckInit, SessionEventBatchMessage, EventAckMessage>;

/** The ReportEvents method of the loaded service, with its message types. */
export function reportEventsMethod(proto: DiscoveryProto): ReportEventsMethod {
  const method = (proto.service as Record<string, unknown>).ReportEvents;
  if (typeof method !== 'object' || method === null) throw new GatehouseError('GH_ERR_CP_PROTO_NOT_FOUND', { paths: `${SERVICE_NAME}.ReportEvents` });
  // Asserted once, as loadDiscoveryProto does for StreamSnapshots: proto-loader builds the codecs at run time.
  return method as ReportEventsMethod;
}

/** Stands in for a line that is not an event: a seq that is no number, which the store refuses as malformed (never as a re-send). */
const UNREADABLE_LINE: EventLineFields = { seq: Number.NaN, at: '', type: '', payload: undefined };

function eventFields(line: string): EventLineFields {
  let value: unknown;
  try {
    value = JSON.parse(line) as unknown;
  } catch {
    return UNREADABLE_LINE;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return UNREADABLE_LINE;
  const { seq, at, type, payload } = value as Record<string, unknown>;
  if (typeof seq !== 'number' || typeof at !== 'string' || typeof type !== 'string') return UNREADABLE_LINE;
  return { seq, at, type, payload };
}

/** The events of a SessionEventBatch, one per line (a last line without its newline counts too). */
export function parseEventLines(events: Buffer): EventLineFields[] {
  const lines = events.toString('utf8').split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines.map(eventFields);
}

/** How many events a SessionEventBatch carries, counted without parsing them. */
export function countEventLines(events: Buffer): number {
  let count = 0;
  for (let offset = events.indexOf(0x0a); offset >= 0; offset = events.indexOf(0x0a, offset + 1)) count += 1;
  return events.length > 0 && events[events.length - 1] !== 0x0a ? count + 1 : count;
}

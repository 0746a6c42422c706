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

/** A SessionEvent as received: scalars always present, absent messages null. */
export interface SessionEventMessage {
  readonly node: NodeMessage | null;
  readonly session_id: string;
  readonly seq: number;
  readonly at: string;
  readonly type: string;
  readonly payload: Buffer;
  readonly session: SessionInfoMessage | null;
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
export type SessionEventInit = Partial<Omit<SessionEventMessage, 'node' | 'session' | 'payload'>> & {
  readonly node?: Partial<NodeMessage> | null;
  readonly session?: SessionInfoMessage | null;
  readonly payload?: Uint8Array;
};
export interface EventAckInit {
  readonly sessions?: readonly (Omit<SessionProgressMessage, 'error'> & { readonly error?: ErrorDetailMessage | null })[];
}

export type ReportEventsMethod = MethodDefinition<SessionEventInit, EventAckInit, SessionEventMessage, EventAckMessage>;

/** The ReportEvents method of the loaded service, with its message types. */
export function reportEventsMethod(proto: DiscoveryProto): ReportEventsMethod {
  const method = (proto.service as Record<string, unknown>).ReportEvents;
  if (typeof method !== 'object' || method === null) throw new GatehouseError('GH_ERR_CP_PROTO_NOT_FOUND', { paths: `${SERVICE_NAME}.ReportEvents` });
  // Asserted once, as loadDiscoveryProto does for StreamSnapshots: proto-loader builds the codecs at run time.
  return method as ReportEventsMethod;
}

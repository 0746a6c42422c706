// The operator's side of ReportEvents: a sidecar uploads a batch of session events in one
// client-streaming call (each message a run of one session's events as JSON lines), authenticated by its node token exactly as the discovery stream is (the
// same NodeAuthenticator, the same refusals), and gets back how far each session is stored. The
// store does the rest: ordering, idempotent re-sends, ownership of sessions by node.
import { Metadata, status as GrpcStatus, type handleClientStreamingCall, type ServerErrorResponse } from '@grpc/grpc-js';
import { GatehouseError } from '../../api/errors.js';
import type { Logger } from '../../api/logging/logger.js';
import { countEventLines, parseEventLines, type EventAckInit, type SessionEventBatchMessage } from '../../api/recordings/report-events-proto.js';
import { ERROR_CODE_METADATA_KEY, type AuthenticationResult, type NodeAuthenticator } from '../control-plane/node-stream.js';
import type { AppendResult, IncomingEvent, RecordingStore, SessionStart } from './recording-store.js';

/** One call carries at most this many events; the uploader sends smaller batches. */
export const MAX_EVENTS_PER_CALL = 5_000;

export interface ReportEventsOptions {
  readonly store: RecordingStore;
  readonly authenticator: NodeAuthenticator;
  readonly logger: Logger;
}

export type ReportEventsHandler = handleClientStreamingCall<SessionEventBatchMessage, EventAckInit>;

function failure(code: GrpcStatus, error: GatehouseError, causeCode?: string): ServerErrorResponse {
  const metadata = new Metadata();
  metadata.set(ERROR_CODE_METADATA_KEY, causeCode ?? error.code);
  return Object.assign(new Error(error.message), { code, details: `${error.code}: ${error.message}`, metadata });
}

/** Who the call's first message proves, or the gRPC error that refuses it. */
async function authenticate(first: SessionEventBatchMessage | undefined, authenticator: NodeAuthenticator): Promise<string | ServerErrorResponse> {
  const claimed = first?.node?.id ?? '';
  const token = first?.node?.token ?? '';
  if (claimed === '' || token === '') return failure(GrpcStatus.UNAUTHENTICATED, new GatehouseError('GH_ERR_CP_NO_NODE'));
  let result: AuthenticationResult;
  try {
    result = await authenticator.authenticate(token, claimed);
  } catch (error) {
    return failure(GrpcStatus.UNAVAILABLE, new GatehouseError('GH_ERR_CP_AUTH_UNAVAILABLE', { node: claimed, detail: error instanceof Error ? error.message : String(error) }));
  }
  if (!('nodeId' in result)) return failure(GrpcStatus.UNAUTHENTICATED, new GatehouseError('GH_ERR_CP_UNAUTHENTICATED', { node: claimed, detail: result.message }), result.code);
  if (result.nodeId !== claimed) return failure(GrpcStatus.PERMISSION_DENIED, new GatehouseError('GH_ERR_CP_NODE_MISMATCH', { proven: result.nodeId, claimed }));
  return result.nodeId;
}

interface SessionBatch {
  start?: SessionStart;
  readonly events: IncomingEvent[];
}

/** Groups the call's events by session, in arrival order, keeping each session's first start info. */
function groupBySession(messages: readonly SessionEventBatchMessage[]): Map<string, SessionBatch> {
  const batches = new Map<string, SessionBatch>();
  for (const message of messages) {
    // Nothing to store (or a sender from before events were batched, whose fields are unknown here).
    if (message.events.length === 0) continue;
    let batch = batches.get(message.session_id);
    if (batch === undefined) batches.set(message.session_id, (batch = { events: [] }));
    if (batch.start === undefined && message.session !== null) {
      const { identity, resource, protocol, started_at: startedAt } = message.session;
      batch.start = { identity, resource, protocol, startedAt };
    }
    for (const event of parseEventLines(message.events)) batch.events.push(event);
  }
  return batches;
}

export function reportEventsHandler(options: ReportEventsOptions): ReportEventsHandler {
  return (call, callback) => {
    const messages: SessionEventBatchMessage[] = [];
    let events = 0;
    call.on('data', (message: SessionEventBatchMessage) => {
      // Counted as they arrive, and kept only within the bound, so a call cannot pile up memory.
      events += countEventLines(message.events);
      if (events <= MAX_EVENTS_PER_CALL) messages.push(message);
    });
    call.on('error', () => undefined);
    call.on('end', () => {
      if (events > MAX_EVENTS_PER_CALL) {
        callback(failure(GrpcStatus.RESOURCE_EXHAUSTED, new GatehouseError('GH_ERR_INVALID_ARGUMENT', { detail: `a ReportEvents call carries at most ${MAX_EVENTS_PER_CALL} events; send smaller batches` })));
        return;
      }
      void answer(messages, options).then(
        (ack) => callback(null, ack),
        (error: ServerErrorResponse) => callback(error),
      );
    });
  };
}

async function answer(messages: readonly SessionEventBatchMessage[], options: ReportEventsOptions): Promise<EventAckInit> {
  const node = await authenticate(messages[0], options.authenticator);
  if (typeof node !== 'string') {
    options.logger.warn({ node: messages[0]?.node?.id, code: node.metadata?.get(ERROR_CODE_METADATA_KEY)[0] }, 'event upload refused');
    throw node;
  }
  const sessions = [];
  for (const [session, batch] of groupBySession(messages)) {
    const result: AppendResult = await options.store.append({ node, session, events: batch.events, ...(batch.start ? { start: batch.start } : {}) });
    sessions.push({
      session_id: session,
      stored_through_seq: result.storedThrough,
      error: result.error ? { code: result.error.code, message: result.error.message } : null,
    });
  }
  return { sessions };
}

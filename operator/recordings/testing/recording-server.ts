// Test helpers for session recordings: a real gRPC server on 127.0.0.1 serving ReportEvents over a
// RecordingStore in a folder, and a raw client that sends a hand-written batch. Used by the
// operator's, the sidecar's and the CLI's tests; never by production code.
import { ChannelCredentials, Client, Metadata, Server, ServerCredentials, type ServiceError } from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { silentLogger } from '../../../api/logging/logger.js';
import { loadDiscoveryProto, type DiscoveryProto } from '../../../api/proto/discovery-proto.js';
import type { CheckpointSigner } from '../../../api/recordings/checkpoint.js';
import {
  countEventLines, REPORT_EVENTS_PATH, reportEventsMethod, type EventAckMessage, type SessionEventBatchInit, type SessionEventBatchMessage,
} from '../../../api/recordings/report-events-proto.js';
import type { ServerTransport } from '../../control-plane/stream-server.js';
import { FakeAuthenticator } from '../../control-plane/testing/fake-authenticator.js';
import type { RecordingStore, RetentionOptions } from '../recording-store.js';
import { startRecordingService } from '../recording-service.js';

export interface RecordingServerOptions {
  readonly dir: string;
  readonly signer: CheckpointSigner;
  /** 0 picks a free port; pass the old one to bring a stopped server back where sidecars expect it. */
  readonly port?: number;
  readonly transport?: ServerTransport;
  readonly retention?: RetentionOptions;
}

export interface RecordingServer {
  readonly proto: DiscoveryProto;
  readonly port: number;
  readonly address: string;
  readonly store: RecordingStore;
  readonly registry: Registry;
  readonly authenticator: FakeAuthenticator;
  /** What arrived so far: ReportEvents calls, their messages and the events in them. */
  readonly received: { calls: number; messages: number; events: number };
  /** Stops the server and seals open sessions as interrupted, like an operator shutdown. */
  close(): Promise<void>;
}

export async function startRecordingServer(options: RecordingServerOptions): Promise<RecordingServer> {
  const proto = loadDiscoveryProto();
  const registry = new Registry();
  const authenticator = new FakeAuthenticator();
  const service = await startRecordingService({
    dir: options.dir, signer: options.signer, registry, logger: silentLogger(), authenticator, ...(options.retention ? { retention: options.retention } : {}),
  });
  const { store } = service;
  // Wired as the discovery server should: ReportEvents in the one PolicyDiscoveryService implementation.
  reportEventsMethod(proto);
  const server = new Server();
  const received = { calls: 0, messages: 0, events: 0 };
  server.addService(proto.service, {
    ReportEvents: ((call, callback) => {
      received.calls += 1;
      call.on('data', (message: SessionEventBatchMessage) => {
        received.messages += 1;
        received.events += countEventLines(message.events);
      });
      service.reportEvents(call, callback);
    }) satisfies typeof service.reportEvents,
  });
  const transport = options.transport ?? { kind: 'plaintext-local-mode' };
  const credentials = transport.kind === 'tls'
    ? ServerCredentials.createSsl(null, [{ private_key: Buffer.from(transport.keyPem), cert_chain: Buffer.from(transport.certPem) }], false)
    : ServerCredentials.createInsecure();
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`127.0.0.1:${options.port ?? 0}`, credentials, (error, bound) => (error ? reject(error) : resolve(bound)));
  });
  return {
    proto, port, address: `127.0.0.1:${port}`, store, registry, authenticator, received,
    close: async () => {
      server.forceShutdown();
      await service.close();
    },
  };
}

export type ReportOutcome = { readonly ack: EventAckMessage } | { readonly error: ServiceError };

/** Sends one ReportEvents call with exactly these messages. */
export function reportEvents(proto: DiscoveryProto, address: string, messages: readonly SessionEventBatchInit[], credentials = ChannelCredentials.createInsecure()): Promise<ReportOutcome> {
  const method = reportEventsMethod(proto);
  const client = new Client(address, credentials);
  return new Promise((resolve) => {
    const call = client.makeClientStreamRequest(REPORT_EVENTS_PATH, method.requestSerialize, method.responseDeserialize, new Metadata(), { deadline: Date.now() + 5_000 }, (error, ack) => {
      client.close();
      resolve(error ? { error } : { ack: ack! });
    });
    for (const message of messages) call.write(message);
    call.end();
  });
}

/** A run of statement events seq from..to of a session as one message carrying the node and the session (the last an `end` with `end`). */
export function statementMessages(nodeId: string, session: string, from: number, to: number, options: { readonly end?: boolean; readonly token?: string } = {}): SessionEventBatchInit[] {
  let lines = '';
  for (let seq = from; seq <= to; seq += 1) {
    const end = options.end === true && seq === to;
    const at = new Date(Date.UTC(2026, 10, 20, 9, 0, 0, seq * 10)).toISOString();
    lines += `${JSON.stringify({ seq, at, type: end ? 'end' : 'statement', payload: end ? {} : { text: `SELECT ${seq}`, decision: 'allow', operation: 'read' } })}\n`;
  }
  return [{
    node: { id: nodeId, token: options.token ?? FakeAuthenticator.tokenFor(nodeId) },
    session_id: session,
    session: { identity: 'ci-runner', resource: 'orders-db', protocol: 'postgres', started_at: '2026-11-20T09:00:00.000Z' },
    events: Buffer.from(lines),
  }];
}

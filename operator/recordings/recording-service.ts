// Everything the operator needs for session recordings in one place: the store over its folder,
// its metrics, and the ReportEvents handler the discovery server serves. The caller passes the
// signing key, the registry and the NodeAuthenticator it already has for StreamSnapshots.
import type { Registry } from 'prom-client';
import type { Logger } from '../../api/logging/logger.js';
import type { CheckpointSigner } from '../../api/recordings/checkpoint.js';
import type { NodeAuthenticator } from '../control-plane/node-stream.js';
import { createRecordingMetrics } from './recording-metrics.js';
import { RecordingStore, type RetentionOptions } from './recording-store.js';
import { reportEventsHandler, type ReportEventsHandler } from './report-events-handler.js';

export interface RecordingServiceOptions {
  readonly dir: string;
  readonly signer: CheckpointSigner;
  readonly registry: Registry;
  readonly logger: Logger;
  readonly authenticator: NodeAuthenticator;
  readonly retention?: RetentionOptions;
  readonly idleSealMs?: number;
}

export interface RecordingService {
  readonly store: RecordingStore;
  /** Pass as `ReportEvents` in the PolicyDiscoveryService implementation. */
  readonly reportEvents: ReportEventsHandler;
  /** Seals open sessions as interrupted; call after the gRPC server stopped taking calls. */
  close(): Promise<void>;
}

export async function startRecordingService(options: RecordingServiceOptions): Promise<RecordingService> {
  const logger = options.logger.child({ component: 'recordings' });
  const store = await RecordingStore.open({
    dir: options.dir, signer: options.signer, metrics: createRecordingMetrics(options.registry), logger,
    ...(options.retention ? { retention: options.retention } : {}),
    ...(options.idleSealMs !== undefined ? { idleSealMs: options.idleSealMs } : {}),
  });
  return {
    store,
    reportEvents: reportEventsHandler({ store, authenticator: options.authenticator, logger }),
    close: () => store.close(),
  };
}

// Prometheus metrics of the operator's recording store: what was written, which sessions are open
// or sealed, what retention removed, and recordings that failed verification.
import { Counter, Gauge, type Registry } from 'prom-client';

export interface RecordingMetrics {
  readonly bytesWritten: Counter<never>;
  readonly sessionsOpen: Gauge<never>;
  readonly sessionsSealed: Counter<'status'>;
  readonly events: Counter<'type'>;
  readonly duplicateEvents: Counter<never>;
  readonly refusedEvents: Counter<'reason'>;
  readonly retentionDeletions: Counter<'reason'>;
  readonly retentionBytes: Gauge<never>;
  readonly verificationFailures: Counter<never>;
}

export function createRecordingMetrics(registry: Registry): RecordingMetrics {
  const registers = [registry];
  return {
    bytesWritten: new Counter({ name: 'gatehouse_recording_bytes_written_total', help: 'Bytes written to session recording files.', registers }),
    sessionsOpen: new Gauge({ name: 'gatehouse_recording_sessions_open', help: 'Session recordings open for writing.', registers }),
    sessionsSealed: new Counter({ name: 'gatehouse_recording_sessions_sealed_total', help: 'Session recordings sealed with a signed checkpoint, by status (sealed: the session ended; interrupted: cut off by an operator shutdown or crash).', labelNames: ['status'], registers }),
    events: new Counter({ name: 'gatehouse_recording_events_total', help: 'Session events stored, by event type.', labelNames: ['type'], registers }),
    duplicateEvents: new Counter({ name: 'gatehouse_recording_duplicate_events_total', help: 'Re-sent session events that were already stored and were ignored.', registers }),
    refusedEvents: new Counter({ name: 'gatehouse_recording_refused_events_total', help: 'Session events refused, by reason (not-owner, seq-gap, malformed, no-session-info, write-failed).', labelNames: ['reason'], registers }),
    retentionDeletions: new Counter({ name: 'gatehouse_recording_retention_deletions_total', help: 'Recording files deleted by retention, by reason (age or size).', labelNames: ['reason'], registers }),
    retentionBytes: new Gauge({ name: 'gatehouse_recording_stored_bytes', help: 'Bytes of recordings on disk after the last retention pass.', registers }),
    verificationFailures: new Counter({ name: 'gatehouse_recording_verification_failures_total', help: 'Recordings that failed verification (a broken chain or checkpoint) when the store checked them.', registers }),
  };
}

// A SessionRecorder that sends every session's events to the operator (ReportEvents), which keeps
// the tamper-evident recording. Events go to a disk spool first (recording-spool.ts) and are
// forgotten only when the operator acknowledges them, so an unreachable operator or a sidecar
// restart loses nothing; they are uploaded later in order. The spool is bounded: when it is full,
// new events are dropped, counted, logged loudly and reported to the operator as a `gap` event.
// `recordingHealthy()` says whether recording works right now, for a mode that refuses statements
// while it does not.
import { ChannelCredentials, Client, Metadata, type ServiceError } from '@grpc/grpc-js';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from '../../api/logging/logger.js';
import type { JsonValue } from '../../api/recordings/canonical-json.js';
import {
  REPORT_EVENTS_PATH, reportEventsMethod, type EventAckMessage, type ReportEventsMethod, type SessionEventInit,
} from '../../api/recordings/report-events-proto.js';
import type { DiscoveryProto } from '../../api/proto/discovery-proto.js';
import { DEFAULT_BACKOFF, reconnectDelay, type BackoffOptions, type ClientTransport } from '../control-plane/snapshot-client.js';
import { probeSpool, readSpool, SpoolFile, spooledEvent, spoolPath, type SpooledEvent, type SpoolSessionInfo } from './recording-spool.js';
import { eventTimestamp, type SessionEvent, type SessionInfo, type SessionRecorder, type SessionRecording } from './session-recorder.js';

export interface UploadingRecorderOptions {
  readonly proto: DiscoveryProto;
  /** host:port of the operator's discovery service (ReportEvents is on the same server). */
  readonly address: string;
  readonly transport: ClientTransport;
  readonly nodeId: string;
  /** Read for every upload: the kubelet rotates projected tokens. */
  readonly token: () => string | Promise<string>;
  readonly spoolDir: string;
  /** Default 256 MiB. */
  readonly maxSpoolBytes?: number;
  /** Events per ReportEvents call; default 500. */
  readonly batchEvents?: number;
  /** How long new events wait to be batched; default 200 ms. */
  readonly flushIntervalMs?: number;
  /** Deadline of one upload call; default 10 s. */
  readonly callTimeoutMs?: number;
  readonly backoff?: Partial<BackoffOptions>;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly random?: () => number;
}

interface SpooledSession {
  readonly info: SpoolSessionInfo;
  readonly file: SpoolFile;
  nextSeq: number;
  /** Not yet acknowledged, in seq order. */
  pending: SpooledEvent[];
  /** Lines waiting to be appended to the spool file. */
  buffer: string;
  ended: boolean;
}

interface UploaderMetrics {
  readonly spoolBytes: Gauge<never>;
  readonly backlog: Gauge<never>;
  readonly dropped: Counter<never>;
  readonly uploaded: Counter<never>;
  readonly failures: Counter<'reason'>;
  readonly healthy: Gauge<never>;
}

/** The backlog gauges are read when scraped, not set per event: recording sits on the statement path. */
function createMetrics(registry: Registry, read: { spoolBytes(): number; backlog(): number }): UploaderMetrics {
  const registers = [registry];
  return {
    spoolBytes: new Gauge({
      name: 'gatehouse_recording_spool_bytes', help: 'Bytes of session events in the sidecar\'s spool, waiting for the operator\'s acknowledgement.', registers,
      collect() {
        this.set(read.spoolBytes());
      },
    }),
    backlog: new Gauge({
      name: 'gatehouse_recording_upload_backlog_events', help: 'Session events not yet acknowledged by the operator.', registers,
      collect() {
        this.set(read.backlog());
      },
    }),
    dropped: new Counter({ name: 'gatehouse_recording_dropped_events_total', help: 'Session events dropped because the spool was full (reported to the operator as gap events).', registers }),
    uploaded: new Counter({ name: 'gatehouse_recording_uploaded_events_total', help: 'Session events the operator acknowledged as stored.', registers }),
    failures: new Counter({ name: 'gatehouse_recording_upload_failures_total', help: 'Failed uploads of session events, by reason (unavailable, refused, spool).', labelNames: ['reason'], registers }),
    healthy: new Gauge({ name: 'gatehouse_recording_healthy', help: '1 while session recording works (uploads succeed, the spool has room), else 0.', registers }),
  };
}

function channelCredentials(transport: ClientTransport): ChannelCredentials {
  return transport.kind === 'tls' ? ChannelCredentials.createSsl(Buffer.from(transport.caPem)) : ChannelCredentials.createInsecure();
}

/** The event's fields other than type and at: the payload the operator stores. */
function payloadOf(event: SessionEvent): { readonly [key: string]: JsonValue } {
  const { type: _type, at: _at, ...rest } = event;
  return rest as unknown as { readonly [key: string]: JsonValue };
}

/** Refusals that re-sending cannot fix: the session is set aside instead of blocking the spool. */
const PERMANENT_REFUSALS = new Set(['GH_ERR_RECORDING_NOT_OWNER', 'GH_ERR_RECORDING_BAD_EVENT']);

export type HealthListener = (healthy: boolean, reason: string) => void;

export class UploadingRecorder implements SessionRecorder {
  private readonly sessions = new Map<string, SpooledSession>();
  private readonly metrics: UploaderMetrics;
  private readonly method: ReportEventsMethod;
  private readonly client: Client;
  private readonly backoff: BackoffOptions;
  private readonly maxSpoolBytes: number;
  private readonly listeners = new Set<HealthListener>();
  private flushTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private pumping: Promise<void> | undefined;
  private attempt = 0;
  private failing = false;
  private full = false;
  /** Events dropped for lack of room, per session, not yet reported as a gap. */
  private readonly lost = new Map<string, number>();
  /** Bytes of unacknowledged events: what the spool bound limits. */
  private spoolBytes = 0;
  private stopped = false;
  private healthy = true;
  private unhealthyAt: number | undefined;

  private constructor(private readonly options: UploadingRecorderOptions) {
    this.metrics = createMetrics(options.registry, { spoolBytes: () => Math.max(0, this.spoolBytes), backlog: () => this.backlog() });
    this.metrics.healthy.set(1);
    this.method = reportEventsMethod(options.proto);
    const target = options.transport.kind === 'tls' && options.transport.serverName ? { 'grpc.ssl_target_name_override': options.transport.serverName } : {};
    this.client = new Client(options.address, channelCredentials(options.transport), { 'grpc.enable_channelz': 0, ...target });
    this.backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.maxSpoolBytes = options.maxSpoolBytes ?? 256 * 1024 * 1024;
  }

  /** Reads the spool back (sessions a restart cut off are ended), then starts uploading it. */
  static async start(options: UploadingRecorderOptions): Promise<UploadingRecorder> {
    const recorder = new UploadingRecorder(options);
    const recovered = await readSpool(options.spoolDir);
    await probeSpool(options.spoolDir);
    for (const { info, events, fileBytes } of recovered) {
      const session: SpooledSession = {
        info, file: new SpoolFile(spoolPath(options.spoolDir, info.session), info, fileBytes),
        nextSeq: (events.at(-1)?.seq ?? 0) + 1, pending: [...events], buffer: '', ended: events.at(-1)?.type === 'end',
      };
      recorder.sessions.set(info.session, session);
      recorder.spoolBytes += events.reduce((sum, event) => sum + event.bytes, 0);
      // Its connection died with the old process: end it so the operator seals it.
      if (!session.ended) recorder.enqueue(session, 'end', eventTimestamp(), { reason: 'sidecar restarted' });
    }
    if (recovered.length > 0) options.logger.info({ sessions: recovered.length, events: recovered.reduce((sum, entry) => sum + entry.events.length, 0) }, 'session events from the spool will be uploaded');
    recorder.schedule();
    return recorder;
  }

  /** True while uploads succeed and the spool has room; false means events are piling up or being lost. */
  recordingHealthy(): boolean {
    return this.healthy;
  }

  /** Epoch ms since when recording has been failing; undefined while it works. */
  unhealthySince(): number | undefined {
    return this.unhealthyAt;
  }

  /** Called with every change of recordingHealthy(); returns the unsubscribe function. */
  onHealthChange(listener: HealthListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Events not yet acknowledged by the operator. */
  backlog(): number {
    let count = 0;
    for (const session of this.sessions.values()) count += session.pending.length;
    return count;
  }

  open(info: SessionInfo): SessionRecording {
    const spoolInfo: SpoolSessionInfo = { ...info, startedAt: eventTimestamp() };
    const session: SpooledSession = {
      info: spoolInfo, file: new SpoolFile(spoolPath(this.options.spoolDir, info.session), spoolInfo), nextSeq: 1, pending: [], buffer: '', ended: false,
    };
    this.sessions.set(info.session, session);
    return {
      write: (event) => {
        if (!session.ended) this.enqueue(session, event.type, event.at, payloadOf(event));
      },
      end: async () => {
        if (session.ended) return;
        this.enqueue(session, 'end', eventTimestamp(), {});
        await this.flushSpool(session).catch(() => undefined);
      },
    };
  }

  /** Writes the spool, tries one last upload (bounded by the call deadline), and stops; the rest waits in the spool. */
  async close(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.flushTimer);
    clearTimeout(this.retryTimer);
    await this.pumping;
    await this.flushAll();
    if (!this.failing && this.backlog() > 0) await this.upload();
    this.client.close();
  }

  private flushAll(): Promise<unknown> {
    return Promise.all([...this.sessions.values()].map((session) => this.flushSpool(session).catch(() => undefined)));
  }

  private enqueue(session: SpooledSession, type: string, at: string, payload: { readonly [key: string]: JsonValue }): void {
    // A session set aside after a refusal takes no more events.
    if (this.sessions.get(session.info.session) !== session) return;
    const lost = this.lost.get(session.info.session) ?? 0;
    const gap = lost > 0 ? spooledEvent(session.nextSeq, at, 'gap', { lost }) : undefined;
    const event = spooledEvent(session.nextSeq + (gap ? 1 : 0), at, type, payload);
    const bytes = event.bytes + (gap?.bytes ?? 0);
    // The end of a session always fits: without it the operator could not seal the recording.
    if (this.spoolBytes + bytes > this.maxSpoolBytes && type !== 'end') {
      this.drop(session);
      return;
    }
    for (const accepted of gap ? [gap, event] : [event]) {
      session.pending.push(accepted);
      session.buffer += accepted.line;
      session.nextSeq = accepted.seq + 1;
    }
    if (gap) this.lost.delete(session.info.session);
    if (type === 'end') session.ended = true;
    this.spoolBytes += bytes;
    this.schedule();
  }

  private drop(session: SpooledSession): void {
    this.lost.set(session.info.session, (this.lost.get(session.info.session) ?? 0) + 1);
    this.metrics.dropped.inc();
    if (!this.full) {
      this.full = true;
      this.options.logger.error(
        { spoolDir: this.options.spoolDir, maxSpoolBytes: this.maxSpoolBytes, backlog: this.backlog() },
        'RECORDING SPOOL FULL: the operator has not acknowledged session events for too long; new events are being DROPPED until it does',
      );
      this.updateHealth('the spool is full');
    }
  }

  /** Spool writes and uploads happen in batches: at most one timer waits; a pending retry keeps its own time. */
  private schedule(): void {
    if (this.stopped || this.flushTimer !== undefined) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      if (this.retryTimer === undefined) void this.pump();
      else void this.flushAll();
    }, this.options.flushIntervalMs ?? 200);
    this.flushTimer.unref();
  }

  private async flushSpool(session: SpooledSession): Promise<void> {
    if (session.buffer === '') return session.file.flushed();
    const text = session.buffer;
    session.buffer = '';
    try {
      await session.file.append(text);
    } catch (error) {
      this.metrics.failures.inc({ reason: 'spool' });
      this.options.logger.error({ err: (error as Error).message }, 'session events could not be written to the spool; they are kept in memory only');
      this.updateHealth('the spool cannot be written');
      throw error;
    }
  }

  /** Writes the spool, then uploads until nothing is pending or an upload fails (then retries with backoff). */
  private pump(): Promise<void> {
    if (this.stopped || this.pumping !== undefined) return this.pumping ?? Promise.resolve();
    this.pumping = this.pumpLoop().finally(() => {
      this.pumping = undefined;
    });
    return this.pumping;
  }

  private async pumpLoop(): Promise<void> {
    await this.flushAll();
    while (!this.stopped && this.backlog() > 0) {
      await this.upload();
      if (this.failing) {
        if (this.stopped) return;
        const delay = reconnectDelay(this.attempt++, this.backoff, this.options.random ?? Math.random);
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          void this.pump();
        }, delay);
        this.retryTimer.unref();
        return;
      }
    }
  }

  /** One ReportEvents call with the oldest pending events of each session, up to the batch size. */
  private async upload(): Promise<void> {
    const batch = this.nextBatch();
    if (batch.length === 0) return;
    let ack: EventAckMessage;
    try {
      ack = await this.send(batch);
    } catch (error) {
      this.metrics.failures.inc({ reason: 'unavailable' });
      if (!this.failing) this.options.logger.warn({ err: (error as ServiceError).details ?? String(error), backlog: this.backlog() }, 'cannot upload session events to the operator; they stay in the spool and are retried');
      this.failing = true;
      this.updateHealth('uploads to the operator fail');
      return;
    }
    if (this.failing) this.options.logger.info({ backlog: this.backlog() }, 'uploading session events to the operator again');
    this.failing = false;
    this.attempt = 0;
    await this.applyAck(ack);
  }

  private nextBatch(): { session: SpooledSession; events: SpooledEvent[] }[] {
    const limit = this.options.batchEvents ?? 500;
    const batch = [];
    let taken = 0;
    for (const session of this.sessions.values()) {
      if (taken >= limit) break;
      if (session.pending.length === 0) continue;
      const events = session.pending.slice(0, limit - taken);
      batch.push({ session, events });
      taken += events.length;
    }
    return batch;
  }

  private async send(batch: readonly { session: SpooledSession; events: readonly SpooledEvent[] }[]): Promise<EventAckMessage> {
    const token = await this.options.token();
    return new Promise((resolve, reject) => {
      const deadline = Date.now() + (this.options.callTimeoutMs ?? 10_000);
      const call = this.client.makeClientStreamRequest(REPORT_EVENTS_PATH, this.method.requestSerialize, this.method.responseDeserialize, new Metadata(), { deadline }, (error, ack) => {
        if (error || ack === undefined) reject(error ?? new Error('no acknowledgement'));
        else resolve(ack);
      });
      let first = true;
      for (const { session, events } of batch) {
        events.forEach((event, index) => {
          const message: SessionEventInit = {
            ...(first ? { node: { id: this.options.nodeId, token, sidecar_version: 'gatehouse' } } : {}),
            session_id: session.info.session, seq: event.seq, at: event.at, type: event.type, payload: Buffer.from(event.payloadJson),
            ...(index === 0 ? { session: { identity: session.info.identity, resource: session.info.resource, protocol: session.info.protocol, started_at: session.info.startedAt } } : {}),
          };
          first = false;
          call.write(message);
        });
      }
      call.end();
    });
  }

  /** Bookkeeping first, all at once (what the backlog and health report), then the spool files catch up. */
  private async applyAck(ack: EventAckMessage): Promise<void> {
    const fileWork: (() => Promise<void>)[] = [];
    for (const progress of ack.sessions) {
      const session = this.sessions.get(progress.session_id);
      if (session === undefined) continue;
      if (progress.error !== null && PERMANENT_REFUSALS.has(progress.error.code)) {
        const { code, message } = progress.error;
        this.sessions.delete(session.info.session);
        this.spoolBytes -= session.pending.reduce((sum, event) => sum + event.bytes, 0);
        fileWork.push(() => this.setAside(session, code, message));
        continue;
      }
      if (progress.error !== null) this.options.logger.warn({ session: progress.session_id, code: progress.error.code, detail: progress.error.message }, 'the operator refused some session events; they are re-sent');
      const done = session.pending.filter((event) => event.seq <= progress.stored_through_seq);
      if (done.length === 0) continue;
      session.pending = session.pending.slice(done.length);
      const bytes = done.reduce((sum, event) => sum + event.bytes, 0);
      this.spoolBytes -= bytes;
      this.metrics.uploaded.inc(done.length);
      if (session.ended && session.pending.length === 0) {
        this.sessions.delete(progress.session_id);
        fileWork.push(async () => {
          await this.flushSpool(session).catch(() => undefined);
          await session.file.remove().catch(() => undefined);
        });
      } else {
        const unacked = session.pending;
        fileWork.push(() => session.file.acknowledged(bytes, unacked).catch(() => undefined));
      }
    }
    this.spoolBytes = Math.max(0, this.spoolBytes);
    if (this.full && this.spoolBytes < this.maxSpoolBytes) {
      this.full = false;
      this.options.logger.warn({ lostSessions: this.lost.size }, 'the recording spool has room again; dropped events are reported to the operator as gaps');
    }
    this.updateHealth('uploads succeed');
    for (const work of fileWork) await work();
  }

  private async setAside(session: SpooledSession, code: string, message: string): Promise<void> {
    this.options.logger.error({ session: session.info.session, code, detail: message, path: `${session.file.path}.refused` }, 'the operator refused this session\'s recording for good; its spool file is set aside');
    this.metrics.failures.inc({ reason: 'refused' });
    await this.flushSpool(session).catch(() => undefined);
    await session.file.quarantine();
  }

  private updateHealth(reason: string): void {
    const healthy = !this.failing && !this.full;
    if (healthy === this.healthy) return;
    this.healthy = healthy;
    this.unhealthyAt = healthy ? undefined : Date.now();
    this.metrics.healthy.set(healthy ? 1 : 0);
    for (const listener of this.listeners) listener(healthy, reason);
  }
}

// A SessionRecorder that sends every session's events to the operator (ReportEvents), which keeps
// the tamper-evident recording. Events go to a disk spool first (recording-spool.ts) and are
// forgotten only when the operator acknowledges them, so an unreachable operator or a sidecar
// restart loses nothing; they are uploaded later in order. The spool is bounded: when it is full,
// new events are dropped, counted, logged loudly and reported to the operator as a `gap` event.
// `recordingHealthy()` says whether recording works right now, for a mode that refuses statements
// while it does not.
import { Metadata, type Client, type ServiceError } from '@grpc/grpc-js';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from '../../api/logging/logger.js';
import {
  REPORT_EVENTS_PATH, reportEventsMethod, type EventAckMessage, type ReportEventsMethod, type SessionEventBatchInit,
} from '../../api/recordings/report-events-proto.js';
import type { DiscoveryProto } from '../../api/proto/discovery-proto.js';
import { controlPlaneClient, type ClientTransport } from '../control-plane/control-plane-channel.js';
import { DEFAULT_BACKOFF, reconnectDelay, type BackoffOptions } from '../control-plane/snapshot-client.js';
import { spoolEventLine, spoolLine } from './event-lines.js';
import { lineOffset, probeSpool, readSpool, SpoolFile, spoolPath, type EventRun, type SpoolSessionInfo } from './recording-spool.js';
import { eventTimestamp, type SessionInfo, type SessionRecorder, type SessionRecording } from './session-recorder.js';

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
  /** Events per ReportEvents call; default 2000 (the operator takes up to 5000). */
  readonly batchEvents?: number;
  /** Bytes of events per ReportEvents call (at least one event is sent); default 1 MiB. */
  readonly batchBytes?: number;
  /** How long new events wait before they are written to the spool, in one write per session; default 200 ms. */
  readonly flushIntervalMs?: number;
  /**
   * Least time between the starts of two uploads unless a full call (batchEvents) is waiting; default
   * 1 s. A call costs the event loop about as much as recording a hundred statements, so under load
   * each call should carry many.
   */
  readonly uploadIntervalMs?: number;
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
  /** Handed to the spool file and not yet acknowledged, in seq order. */
  runs: EventRun[];
  runEvents: number;
  /** Lines not yet handed to the spool file, encoded as they come (see appendLine). */
  batch: Buffer | undefined;
  batchBytes: number;
  batchEvents: number;
  /** The seq of the batch's first line. */
  batchFirstSeq: number;
  /** Events dropped for lack of room, not yet reported as a gap. */
  lost: number;
  ended: boolean;
  /** Set aside after the operator refused it for good: takes no more events. */
  refused: boolean;
}

function newSession(info: SpoolSessionInfo, file: SpoolFile, nextSeq: number, runs: EventRun[]): SpooledSession {
  return {
    info, file, nextSeq, runs, runEvents: runs.reduce((sum, run) => sum + run.count, 0),
    batch: undefined, batchBytes: 0, batchEvents: 0, batchFirstSeq: nextSeq, lost: 0, ended: false, refused: false,
  };
}

/** UTF-8 takes at most 3 bytes per UTF-16 code unit (a surrogate pair: 4 for 2). */
const MAX_UTF8_BYTES_PER_UNIT = 3;
/** A session's batch buffer starts small (most sessions are quiet) and doubles up to this before it is handed over early. */
const MAX_BATCH_BUFFER = 64 * 1024;
const MIN_BATCH_BUFFER = 4 * 1024;

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
  /** When the last upload started (epoch ms). */
  private lastUploadAt = 0;
  private failing = false;
  private full = false;
  /** Bytes of unacknowledged events: what the spool bound limits. */
  private spoolBytes = 0;
  private stopped = false;
  private healthy = true;
  private unhealthyAt: number | undefined;
  /**
   * The last line count looked up in a run's bytes: a call cut at a run's Nth line is, as a rule,
   * acknowledged through that same line, and finding it again would search the bytes line by line
   * a second time (thousands of lines when a busy session fills a call).
   */
  private lastLineOffset: { readonly data: Buffer; readonly lines: number; readonly offset: number } | undefined;

  private constructor(private readonly options: UploadingRecorderOptions) {
    this.metrics = createMetrics(options.registry, { spoolBytes: () => Math.max(0, this.spoolBytes), backlog: () => this.backlog() });
    this.metrics.healthy.set(1);
    this.method = reportEventsMethod(options.proto);
    this.client = controlPlaneClient(options.address, options.transport, { 'grpc.enable_channelz': 0 });
    this.backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.maxSpoolBytes = options.maxSpoolBytes ?? 256 * 1024 * 1024;
  }

  /** Reads the spool back (sessions a restart cut off are ended), then starts uploading it. */
  static async start(options: UploadingRecorderOptions): Promise<UploadingRecorder> {
    const recorder = new UploadingRecorder(options);
    const recovered = await readSpool(options.spoolDir);
    await probeSpool(options.spoolDir);
    for (const { info, runs, lastSeq, lastType, fileBytes } of recovered) {
      const session = newSession(info, new SpoolFile(spoolPath(options.spoolDir, info.session), info, fileBytes), lastSeq + 1, [...runs]);
      session.ended = lastType === 'end';
      recorder.sessions.set(info.session, session);
      recorder.spoolBytes += runs.reduce((sum, run) => sum + run.data.length, 0);
      // Its connection died with the old process: end it so the operator seals it.
      if (!session.ended) recorder.enqueue(session, 'end', eventTimestamp(), { reason: 'sidecar restarted' });
    }
    if (recovered.length > 0) options.logger.info({ sessions: recovered.length, events: recovered.reduce((sum, entry) => sum + entry.runs.reduce((count, run) => count + run.count, 0), 0) }, 'session events from the spool will be uploaded');
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
    for (const session of this.sessions.values()) count += session.runEvents + session.batchEvents;
    return count;
  }

  open(info: SessionInfo): SessionRecording {
    const spoolInfo: SpoolSessionInfo = { ...info, startedAt: eventTimestamp() };
    const session = newSession(spoolInfo, new SpoolFile(spoolPath(this.options.spoolDir, info.session), spoolInfo), 1, []);
    this.sessions.set(info.session, session);
    return {
      // The hot path: one hand-made line written into the session's batch buffer, nothing else per event.
      write: (event) => {
        if (session.ended || session.refused) return;
        if (session.lost > 0) this.appendLines(session, spoolEventLine(session.nextSeq + 1, event), this.gapLine(session, event.at), event.type);
        else this.appendLines(session, spoolEventLine(session.nextSeq, event), undefined, event.type);
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
    await Promise.all([...this.sessions.values()].map((session) => session.file.close()));
    this.client.close();
  }

  private flushAll(): Promise<unknown> {
    return Promise.all([...this.sessions.values()].map((session) => this.flushSpool(session).catch(() => undefined)));
  }

  /** An event the uploader makes itself (end). */
  private enqueue(session: SpooledSession, type: string, at: string, payload: object): void {
    if (session.refused) return;
    if (session.lost > 0) this.appendLines(session, spoolLine(session.nextSeq + 1, at, type, payload), this.gapLine(session, at), type);
    else this.appendLines(session, spoolLine(session.nextSeq, at, type, payload), undefined, type);
  }

  /** The gap event that reports dropped events, numbered just before the event that follows them. */
  private gapLine(session: SpooledSession, at: string): string {
    return spoolLine(session.nextSeq, at, 'gap', { lost: session.lost });
  }

  /**
   * Encodes the event's line (after the gap line, if any) into the session's batch buffer, so the
   * strings die young and the spool write and the upload take the bytes as they are; drops the
   * event instead when the spool has no room for it.
   */
  private appendLines(session: SpooledSession, line: string, gapLine: string | undefined, type: string): void {
    const batch = this.room(session, (line.length + (gapLine?.length ?? 0)) * MAX_UTF8_BYTES_PER_UNIT + 2);
    const start = session.batchBytes;
    let end = start;
    if (gapLine !== undefined) {
      end += batch.write(gapLine, end);
      batch[end++] = 0x0a;
    }
    end += batch.write(line, end);
    batch[end++] = 0x0a;
    const bytes = end - start;
    // The end of a session always fits: without it the operator could not seal the recording.
    if (this.spoolBytes + bytes > this.maxSpoolBytes && type !== 'end') {
      this.drop(session);
      return;
    }
    const events = gapLine === undefined ? 1 : 2;
    if (session.batchEvents === 0) session.batchFirstSeq = session.nextSeq;
    session.batchBytes = end;
    session.batchEvents += events;
    session.nextSeq += events;
    session.lost = 0;
    if (type === 'end') session.ended = true;
    this.spoolBytes += bytes;
    this.schedule();
  }

  /** The session's batch buffer with at least `bytes` free: grown while small, else handed to the spool first. */
  private room(session: SpooledSession, bytes: number): Buffer {
    const batch = session.batch;
    if (batch !== undefined && session.batchBytes + bytes <= batch.length) return batch;
    if (batch !== undefined && batch.length < MAX_BATCH_BUFFER && session.batchBytes + bytes <= MAX_BATCH_BUFFER) {
      const grown = Buffer.allocUnsafeSlow(Math.min(MAX_BATCH_BUFFER, Math.max(batch.length * 2, session.batchBytes + bytes)));
      batch.copy(grown, 0, 0, session.batchBytes);
      session.batch = grown;
      return grown;
    }
    if (session.batchBytes > 0) void this.flushSpool(session).catch(() => undefined);
    if (session.batch === undefined || session.batch.length < bytes) session.batch = Buffer.allocUnsafeSlow(Math.max(MIN_BATCH_BUFFER, bytes));
    return session.batch;
  }

  private drop(session: SpooledSession): void {
    session.lost += 1;
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
    this.flushTimer = setTimeout(() => this.tick(), this.options.flushIntervalMs ?? 200);
    this.flushTimer.unref();
  }

  /** Every flush interval while events wait: they are spooled, and uploaded once an upload is due. */
  private tick(): void {
    this.flushTimer = undefined;
    // A running pump schedules again when it is done; a waiting retry uploads when it fires.
    if (this.pumping !== undefined) return;
    if (this.retryTimer === undefined && this.uploadDue()) {
      void this.pump();
      return;
    }
    void this.flushAll();
    if (this.retryTimer === undefined) this.schedule();
  }

  private uploadDue(): boolean {
    return Date.now() - this.lastUploadAt >= (this.options.uploadIntervalMs ?? 1_000) || this.backlog() >= this.batchEvents();
  }

  private batchEvents(): number {
    return this.options.batchEvents ?? 2_000;
  }

  /** Hands the batch to the spool file as one run (a copy: the buffer is reused) and waits for every write so far. */
  private async flushSpool(session: SpooledSession): Promise<void> {
    if (session.batchBytes === 0) return session.file.flushed();
    const run: EventRun = { firstSeq: session.batchFirstSeq, count: session.batchEvents, data: Buffer.from(session.batch!.subarray(0, session.batchBytes)) };
    session.runs.push(run);
    session.runEvents += run.count;
    session.batchBytes = 0;
    session.batchEvents = 0;
    // An ended session takes no more events: its buffer can go.
    if (session.ended) session.batch = undefined;
    try {
      await session.file.append(run.data);
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
      if (!this.failing && this.backlog() > 0) this.schedule();
    });
    return this.pumping;
  }

  private async pumpLoop(): Promise<void> {
    await this.flushAll();
    while (!this.stopped && this.backlog() > 0) {
      this.lastUploadAt = Date.now();
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
      // Events that came during the upload are spooled before they are sent.
      await this.flushAll();
      // A backlog of full calls goes out call after call; anything less waits for the next upload, to make it bigger.
      if (this.backlog() < this.batchEvents()) break;
    }
  }

  /** One ReportEvents call with the oldest spooled events of each session, up to the batch limits. */
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

  /** Per session, the bytes of its oldest spooled events: whole runs, the last one cut at a line when a limit is reached. */
  private nextBatch(): { session: SpooledSession; events: Buffer }[] {
    let eventsLeft = this.batchEvents();
    let bytesLeft = this.options.batchBytes ?? 1024 * 1024;
    const batch = [];
    for (const session of this.sessions.values()) {
      if (eventsLeft <= 0 || bytesLeft <= 0) break;
      const parts: Buffer[] = [];
      for (const run of session.runs) {
        if (eventsLeft <= 0 || bytesLeft <= 0) break;
        if (run.count <= eventsLeft && run.data.length <= bytesLeft) {
          parts.push(run.data);
          eventsLeft -= run.count;
          bytesLeft -= run.data.length;
          continue;
        }
        const cut = this.cutRun(run, eventsLeft, bytesLeft, batch.length === 0 && parts.length === 0);
        if (cut.length > 0) parts.push(cut);
        eventsLeft = 0;
      }
      if (parts.length > 0) batch.push({ session, events: parts.length === 1 ? parts[0]! : Buffer.concat(parts) });
    }
    return batch;
  }

  /** The leading lines of a run within the limits (at least one line when `first`, so a huge event still goes). */
  private cutRun(run: EventRun, events: number, bytes: number, first: boolean): Buffer {
    let end = this.lineOffset(run.data, Math.min(events, run.count));
    while (end > bytes) {
      const previous = run.data.lastIndexOf(0x0a, end - 2);
      if (previous < 0) return first ? run.data.subarray(0, lineOffset(run.data, 1)) : run.data.subarray(0, 0);
      end = previous + 1;
    }
    return run.data.subarray(0, end);
  }

  private async send(batch: readonly { session: SpooledSession; events: Buffer }[]): Promise<EventAckMessage> {
    const token = await this.options.token();
    return new Promise((resolve, reject) => {
      const deadline = Date.now() + (this.options.callTimeoutMs ?? 10_000);
      const call = this.client.makeClientStreamRequest(REPORT_EVENTS_PATH, this.method.requestSerialize, this.method.responseDeserialize, new Metadata(), { deadline }, (error, ack) => {
        if (error || ack === undefined) reject(error ?? new Error('no acknowledgement'));
        else resolve(ack);
      });
      batch.forEach(({ session, events }, index) => {
        const { identity, resource, protocol, startedAt } = session.info;
        const message: SessionEventBatchInit = {
          ...(index === 0 ? { node: { id: this.options.nodeId, token, sidecar_version: 'gatehouse' } } : {}),
          session_id: session.info.session, session: { identity, resource, protocol, started_at: startedAt }, events,
        };
        call.write(message);
      });
      call.end();
    });
  }

  /** lineOffset(data, lines), remembered for the next call with the same arguments (run bytes never change). */
  private lineOffset(data: Buffer, lines: number): number {
    const last = this.lastLineOffset;
    if (last !== undefined && last.data === data && last.lines === lines) return last.offset;
    const offset = lineOffset(data, lines);
    this.lastLineOffset = { data, lines, offset };
    return offset;
  }

  /** Drops the session's events through `seq` from its runs; returns how many bytes they took. */
  private acknowledge(session: SpooledSession, seq: number): { events: number; bytes: number } {
    let events = 0;
    let bytes = 0;
    while (session.runs.length > 0) {
      const run = session.runs[0]!;
      if (run.firstSeq > seq) break;
      const through = Math.min(seq - run.firstSeq + 1, run.count);
      if (through === run.count) {
        session.runs.shift();
        events += run.count;
        bytes += run.data.length;
        continue;
      }
      const offset = this.lineOffset(run.data, through);
      session.runs[0] = { firstSeq: run.firstSeq + through, count: run.count - through, data: run.data.subarray(offset) };
      events += through;
      bytes += offset;
      break;
    }
    session.runEvents -= events;
    return { events, bytes };
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
        session.refused = true;
        this.spoolBytes -= session.runs.reduce((sum, run) => sum + run.data.length, 0) + session.batchBytes;
        fileWork.push(() => this.setAside(session, code, message));
        continue;
      }
      if (progress.error !== null) this.options.logger.warn({ session: progress.session_id, code: progress.error.code, detail: progress.error.message }, 'the operator refused some session events; they are re-sent');
      const done = this.acknowledge(session, progress.stored_through_seq);
      if (done.events === 0) continue;
      this.spoolBytes -= done.bytes;
      this.metrics.uploaded.inc(done.events);
      if (session.ended && session.runEvents + session.batchEvents === 0) {
        this.sessions.delete(progress.session_id);
        fileWork.push(async () => {
          await this.flushSpool(session).catch(() => undefined);
          await session.file.remove().catch(() => undefined);
        });
      } else {
        // The rewrite keeps the runs handed to the file before it (later ones are appended after it), less what is acknowledged by then.
        const appendedThrough = session.nextSeq - session.batchEvents - 1;
        const unacked = () => session.runs.filter((run) => run.firstSeq <= appendedThrough).map((run) => run.data);
        fileWork.push(() => session.file.acknowledged(done.bytes, unacked).catch(() => undefined));
      }
    }
    this.spoolBytes = Math.max(0, this.spoolBytes);
    if (this.full && this.spoolBytes < this.maxSpoolBytes) {
      this.full = false;
      this.options.logger.warn({ lostSessions: [...this.sessions.values()].filter((session) => session.lost > 0).length }, 'the recording spool has room again; dropped events are reported to the operator as gaps');
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

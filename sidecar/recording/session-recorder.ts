// Session recording: every connection's events (connect, statements with decision and rule, rows,
// errors, disconnect) as JSON lines, through a small interface so sinks can change (a file per
// session now; the operator's tamper-evident store later). Values are masked before they get here.
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { eventLine, TimestampFormatter } from './event-lines.js';

export interface SessionInfo {
  readonly session: string;
  readonly identity: string;
  readonly resource: string;
  readonly protocol: string;
}

interface EventBase {
  /** ISO timestamp. */
  readonly at: string;
}

export type SessionEvent = EventBase &
  (
    | { readonly type: 'connect'; readonly client: Readonly<Record<string, string>> }
    | {
        readonly type: 'statement';
        readonly text: string;
        readonly parameters?: readonly (string | null)[];
        readonly operation: string;
        readonly decision: string;
        readonly rule?: string;
      }
    | { readonly type: 'complete'; readonly command: string; readonly rows: number; readonly durationMs: number }
    | { readonly type: 'error'; readonly code: string; readonly message: string }
    | { readonly type: 'disconnect'; readonly reason: string; readonly durationMs: number }
  );

/** Events of one session, in order. */
export interface SessionRecording {
  write(event: SessionEvent): void;
  end(): Promise<void>;
}

export interface SessionRecorder {
  open(info: SessionInfo): SessionRecording;
  close(): Promise<void>;
  /**
   * Since when (epoch ms) recording has been failing, undefined while it works. Sinks that cannot
   * fail (a local file, the in-process store) leave it out; policies in `sync` mode consult it.
   */
  unhealthySince?(): number | undefined;
}

const timestamps = new TimestampFormatter();

/**
 * The ISO timestamp of an event happening now. Under load a session records several events per
 * millisecond and Date#toISOString costs more than the rest of recording one, so the formatter
 * reuses the string of the current millisecond and formats the date part once a minute (a memo of
 * the clock; it holds no other state).
 */
export function eventTimestamp(): string {
  return timestamps.format(Date.now());
}

const DISCARD: SessionRecording = { write: () => undefined, end: async () => undefined };

/** For resources whose policy turns recording off. */
export const noRecording: SessionRecorder = { open: () => DISCARD, close: async () => undefined };

/**
 * Writes `<dir>/<session>.jsonl`, the first line describing the session, in batches (see
 * RecordingFile); `close` and each session's `end` write out what is pending.
 */
export class FileSessionRecorder implements SessionRecorder {
  private readonly files = new Set<RecordingFile>();
  private ready: Promise<unknown> | undefined;

  /** `onError` hears of lines that could not be written (disk full, folder gone); they are lost. */
  constructor(
    private readonly dir: string,
    private readonly onError: (error: unknown) => void = () => undefined,
  ) {}

  open(info: SessionInfo): SessionRecording {
    this.ready ??= mkdir(this.dir, { recursive: true });
    const file = new RecordingFile(join(this.dir, `${info.session}.jsonl`), this.ready, this.onError);
    this.files.add(file);
    file.append(JSON.stringify({ type: 'session', ...info }));
    return {
      write: (event) => file.append(eventLine(event)),
      end: async () => {
        await file.close();
        this.files.delete(file);
      },
    };
  }

  async close(): Promise<void> {
    await Promise.all([...this.files].map((file) => file.close()));
    this.files.clear();
  }
}

// A file write per statement would cost a syscall (through libuv's thread pool) on the hot path:
// lines are written at most every FLUSH_INTERVAL_MS, or as soon as FLUSH_BYTES are waiting.
const FLUSH_INTERVAL_MS = 200;
const FLUSH_BYTES = 64 * 1024;
/** UTF-8 takes at most 3 bytes per UTF-16 code unit (a surrogate pair: 4 for 2). */
const MAX_UTF8_BYTES_PER_UNIT = 3;

/**
 * One session's file: lines are appended in batches. Each line is encoded into the batch buffer as
 * it comes, so the strings die young instead of waiting, promoted to the old generation, for a
 * flush; and two buffers take turns (one filling while the other is being written), so a busy
 * session reuses the same memory instead of allocating a batch every flush.
 */
class RecordingFile {
  private batch: Buffer | undefined;
  private batchBytes = 0;
  /** The other buffer, free once its write has finished. */
  private spare: Buffer | undefined;
  private scheduled = false;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private handle: Promise<FileHandle>;
  private closed = false;

  constructor(path: string, ready: Promise<unknown>, private readonly onError: (error: unknown) => void) {
    this.handle = ready.then(() => open(path, 'a'));
    // Surface open failures when writing, not as an unhandled rejection.
    this.handle.catch(() => undefined);
  }

  append(line: string): void {
    if (this.closed) return;
    const batch = this.room(line.length * MAX_UTF8_BYTES_PER_UNIT + 1);
    this.batchBytes += batch.write(line, this.batchBytes);
    batch[this.batchBytes++] = 0x0a;
    if (this.batchBytes >= FLUSH_BYTES) {
      void this.flush();
    } else if (!this.scheduled) {
      this.scheduled = true;
      this.timer = setTimeout(() => void this.flush(), FLUSH_INTERVAL_MS);
      this.timer.unref();
    }
  }

  /** A batch buffer with at least `bytes` free, flushing the current one first if it is too full. */
  private room(bytes: number): Buffer {
    if (this.batch !== undefined && this.batchBytes + bytes <= this.batch.length) return this.batch;
    if (this.batchBytes > 0) void this.flush();
    const reusable = this.spare !== undefined && this.spare.length >= bytes ? this.spare : undefined;
    this.spare = undefined;
    this.batch = reusable ?? Buffer.allocUnsafeSlow(Math.max(FLUSH_BYTES, bytes));
    return this.batch;
  }

  private flush(): Promise<void> {
    this.scheduled = false;
    clearTimeout(this.timer);
    const batch = this.batch;
    if (batch === undefined || this.batchBytes === 0) return this.writing;
    const lines = batch.subarray(0, this.batchBytes);
    this.batch = undefined;
    this.batchBytes = 0;
    this.writing = this.writing.then(async () => {
      const handle = await this.handle;
      await handle.appendFile(lines);
    }).catch((error: unknown) => this.onError(error)).finally(() => {
      if (this.batch !== batch) this.spare = batch;
    });
    return this.writing;
  }

  async close(): Promise<void> {
    if (this.closed) return this.writing;
    await this.flush();
    this.closed = true;
    this.spare = undefined;
    await this.handle.then((handle) => handle.close()).catch((error: unknown) => this.onError(error));
  }
}

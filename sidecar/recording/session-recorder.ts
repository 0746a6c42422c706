// Session recording: every connection's events (connect, statements with decision and rule, rows,
// errors, disconnect) as JSON lines, through a small interface so sinks can change (a file per
// session now; the operator's tamper-evident store later). Values are masked before they get here.
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';

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
}

const DISCARD: SessionRecording = { write: () => undefined, end: async () => undefined };

/** For resources whose policy turns recording off. */
export const noRecording: SessionRecorder = { open: () => DISCARD, close: async () => undefined };

/** Writes `<dir>/<session>.jsonl`, the first line describing the session. */
export class FileSessionRecorder implements SessionRecorder {
  private readonly open_ = new Set<WriteStream>();
  private ready: Promise<unknown> | undefined;

  constructor(private readonly dir: string) {}

  open(info: SessionInfo): SessionRecording {
    this.ready ??= mkdir(this.dir, { recursive: true });
    const file = join(this.dir, `${info.session}.jsonl`);
    const pending: string[] = [JSON.stringify({ type: 'session', ...info })];
    let stream: WriteStream | undefined;
    // The folder is created once, asynchronously; events queue in memory until the file is open.
    const opened = this.ready.then(() => {
      stream = createWriteStream(file, { flags: 'a' });
      this.open_.add(stream);
      for (const line of pending.splice(0)) stream.write(`${line}\n`);
    });
    return {
      write: (event) => {
        const line = JSON.stringify(event);
        if (stream) stream.write(`${line}\n`);
        else pending.push(line);
      },
      end: async () => {
        await opened;
        const current = stream!;
        await new Promise<void>((resolve) => current.end(resolve));
        this.open_.delete(current);
      },
    };
  }

  async close(): Promise<void> {
    await Promise.all([...this.open_].map((stream) => new Promise<void>((resolve) => stream.end(resolve))));
  }
}

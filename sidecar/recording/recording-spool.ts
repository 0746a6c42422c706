// The sidecar's disk buffer for session events on their way to the operator: one file per session
// in a spool folder, `<session>.spool`, the session line first and then one JSON line per event. An
// event is written here before it is uploaded and forgotten only once the operator acknowledged it,
// so nothing is lost when the operator is unreachable or the sidecar restarts: the spool is read
// back on start. Acknowledged lines are compacted away; a session done and acknowledged loses its file.
import { mkdir, open, readdir, readFile, rename, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { GatehouseError } from '../../api/errors.js';
import { isJsonObject } from '../../api/recordings/canonical-json.js';

const SUFFIX = '.spool';
/** Rewrite a session's file once this many bytes of it are acknowledged (and they are most of it). */
const COMPACT_BYTES = 1024 * 1024;

export interface SpoolSessionInfo {
  readonly session: string;
  readonly identity: string;
  readonly resource: string;
  readonly protocol: string;
  readonly startedAt: string;
}

/**
 * Consecutive events of one session as their spool lines (each `{"seq","at","type","payload"}` JSON
 * and a newline): the unit that is written to the spool, uploaded and acknowledged, so an event is
 * serialized once and never held as an object of its own.
 */
export interface EventRun {
  readonly firstSeq: number;
  readonly count: number;
  readonly data: Buffer;
}

/** A session read back from the spool folder. */
export interface RecoveredSession {
  readonly info: SpoolSessionInfo;
  /** Its unacknowledged events, split where the seq numbers do not follow on. */
  readonly runs: readonly EventRun[];
  /** The last event's seq and type (0 and undefined when there is none). */
  readonly lastSeq: number;
  readonly lastType: string | undefined;
  readonly fileBytes: number;
}

/** The byte offset just past the `lines`-th newline of `data` (its length when it has fewer). */
export function lineOffset(data: Buffer, lines: number): number {
  let offset = 0;
  for (let line = 0; line < lines; line += 1) {
    const newline = data.indexOf(0x0a, offset);
    if (newline < 0) return data.length;
    offset = newline + 1;
  }
  return offset;
}

function infoLine(info: SpoolSessionInfo): string {
  return `${JSON.stringify({ kind: 'session', ...info })}\n`;
}

function parseInfo(value: unknown): SpoolSessionInfo | undefined {
  if (!isJsonObject(value) || value.kind !== 'session') return undefined;
  const { session, identity, resource, protocol, startedAt } = value;
  if ([session, identity, resource, protocol, startedAt].some((field) => typeof field !== 'string')) return undefined;
  return { session, identity, resource, protocol, startedAt } as SpoolSessionInfo;
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** The seq and type of a well-formed event line, else undefined (a torn or damaged line is skipped). */
function parseEvent(text: string): { readonly seq: number; readonly type: string } | undefined {
  const value = safeParse(text);
  if (!isJsonObject(value) || !Number.isSafeInteger(value.seq) || typeof value.at !== 'string' || typeof value.type !== 'string' || !isJsonObject(value.payload)) return undefined;
  return { seq: value.seq as number, type: value.type };
}

/** Groups well-formed event lines into runs of consecutive seq numbers, each line kept as it was written. */
function recoverRuns(lines: readonly string[]): { runs: EventRun[]; lastSeq: number; lastType: string | undefined } {
  const runs: EventRun[] = [];
  let current: { firstSeq: number; lines: string[] } | undefined;
  let lastSeq = 0;
  let lastType: string | undefined;
  const close = () => {
    if (current) runs.push({ firstSeq: current.firstSeq, count: current.lines.length, data: Buffer.from(current.lines.join('')) });
  };
  for (const line of lines) {
    const event = parseEvent(line);
    if (event === undefined) continue;
    if (current === undefined || event.seq !== lastSeq + 1) {
      close();
      current = { firstSeq: event.seq, lines: [] };
    }
    current.lines.push(`${line}\n`);
    lastSeq = event.seq;
    lastType = event.type;
  }
  close();
  return { runs, lastSeq, lastType };
}

function detail(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** One session's spool file; writes to it are serialized. */
export class SpoolFile {
  private chain: Promise<void> = Promise.resolve();
  /** Kept open between appends: opening and closing the file per batch cost more than writing it. */
  private handle: FileHandle | undefined;
  private created: boolean;
  /** Bytes in the file, and how many of them are acknowledged events. */
  fileBytes: number;
  private ackedBytes = 0;

  constructor(readonly path: string, readonly info: SpoolSessionInfo, existingBytes?: number) {
    this.created = existingBytes !== undefined;
    this.fileBytes = existingBytes ?? 0;
  }

  /** Appends lines (the session line goes first the first time). */
  append(lines: Buffer): Promise<void> {
    return this.serialized(async () => {
      const content = this.created ? lines : Buffer.concat([Buffer.from(infoLine(this.info)), lines]);
      this.handle ??= await open(this.path, 'a');
      try {
        await this.handle.appendFile(content);
      } catch (error) {
        // Reopened next time: the folder may have been replaced meanwhile.
        await this.closeHandle();
        throw error;
      }
      this.created = true;
      this.fileBytes += content.length;
    });
  }

  /**
   * Notes acknowledged bytes; once enough of the file is acknowledged, rewrites it with only the
   * lines `unacked` returns when the rewrite runs: the events appended before it and not yet acknowledged.
   */
  acknowledged(bytes: number, unacked: () => readonly Buffer[]): Promise<void> {
    this.ackedBytes += bytes;
    if (this.ackedBytes < COMPACT_BYTES || this.ackedBytes * 2 < this.fileBytes) return this.chain;
    return this.serialized(async () => {
      const content = Buffer.concat([Buffer.from(infoLine(this.info)), ...unacked()]);
      // The open handle would keep appending to the file the rename replaces.
      await this.closeHandle();
      const temporary = `${this.path}.tmp`;
      await writeFile(temporary, content);
      await rename(temporary, this.path);
      this.fileBytes = content.length;
      this.ackedBytes = 0;
    });
  }

  /** Done and acknowledged: the file goes. */
  remove(): Promise<void> {
    return this.serialized(async () => {
      await this.closeHandle();
      await rm(this.path, { force: true });
      this.fileBytes = 0;
    });
  }

  /** Kept aside, no longer counted or sent (the operator refused the session for good). */
  quarantine(): Promise<void> {
    return this.serialized(async () => {
      await this.closeHandle();
      await rename(this.path, `${this.path}.refused`).catch(() => undefined);
      this.fileBytes = 0;
    });
  }

  flushed(): Promise<void> {
    return this.chain;
  }

  /** After the writes so far; the next append opens the file again. */
  close(): Promise<void> {
    return this.serialized(() => this.closeHandle());
  }

  private async closeHandle(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    await handle?.close().catch(() => undefined);
  }

  private serialized(work: () => Promise<void>): Promise<void> {
    const run = this.chain.then(work).catch((error: unknown) => {
      throw new GatehouseError('GH_ERR_RECORDING_SPOOL', { action: 'write', path: this.path, detail: detail(error) }, { cause: error });
    });
    // Later writes still run after a failed one; the failure reaches the caller of this one.
    this.chain = run.catch(() => undefined);
    return run;
  }
}

/** The session id is the sidecar's own (a UUID), encoded anyway so no id can name a path outside the folder. */
export function spoolPath(dir: string, session: string): string {
  return join(dir, `${encodeURIComponent(session).replace(/^\./, '%2E')}${SUFFIX}`);
}

/** Creates the folder and reads back every session in it; a torn last line (a crash mid-write) is dropped. */
export async function readSpool(dir: string): Promise<RecoveredSession[]> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (error) {
    throw new GatehouseError('GH_ERR_RECORDING_SPOOL', { action: 'create', path: dir, detail: detail(error) }, { cause: error });
  }
  const sessions: RecoveredSession[] = [];
  for (const name of (await readdir(dir)).filter((entry) => entry.endsWith(SUFFIX)).sort()) {
    const path = join(dir, name);
    const text = await readFile(path, 'utf8');
    const lines = text.split('\n');
    const info = parseInfo(safeParse(lines[0] ?? ''));
    if (info === undefined) {
      await rename(path, `${path}.unreadable`);
      continue;
    }
    sessions.push({ info, ...recoverRuns(lines.slice(1, -1)), fileBytes: Buffer.byteLength(text) });
  }
  return sessions;
}

/** Whether the folder can be written now (a probe file), for a clear error at start. */
export async function probeSpool(dir: string): Promise<void> {
  const probe = join(dir, '.probe');
  try {
    const handle = await open(probe, 'w');
    await handle.close();
    await rm(probe, { force: true });
  } catch (error) {
    throw new GatehouseError('GH_ERR_RECORDING_SPOOL', { action: 'write to', path: dir, detail: detail(error) }, { cause: error });
  }
}

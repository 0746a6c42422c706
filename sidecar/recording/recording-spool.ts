// The sidecar's disk buffer for session events on their way to the operator: one file per session
// in a spool folder, `<session>.spool`, the session line first and then one JSON line per event. An
// event is written here before it is uploaded and forgotten only once the operator acknowledged it,
// so nothing is lost when the operator is unreachable or the sidecar restarts: the spool is read
// back on start. Acknowledged lines are compacted away; a session done and acknowledged loses its file.
import { mkdir, open, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GatehouseError } from '../../api/errors.js';
import { isJsonObject, type JsonValue } from '../../api/recordings/canonical-json.js';

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

export interface SpooledEvent {
  readonly seq: number;
  readonly at: string;
  readonly type: string;
  readonly payload: { readonly [key: string]: JsonValue };
  /** The payload's JSON, made once for the spool line and the upload. */
  readonly payloadJson: string;
  /** Its line in the spool file, newline included. */
  readonly line: string;
  readonly bytes: number;
}

export function spooledEvent(seq: number, at: string, type: string, payload: { readonly [key: string]: JsonValue }): SpooledEvent {
  const payloadJson = JSON.stringify(payload);
  const line = `{"seq":${seq},"at":${JSON.stringify(at)},"type":${JSON.stringify(type)},"payload":${payloadJson}}\n`;
  return { seq, at, type, payload, payloadJson, line, bytes: Buffer.byteLength(line) };
}

/** A session read back from the spool folder. */
export interface RecoveredSession {
  readonly info: SpoolSessionInfo;
  readonly events: readonly SpooledEvent[];
  readonly fileBytes: number;
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

function parseEvent(text: string): SpooledEvent | undefined {
  const value = safeParse(text);
  if (!isJsonObject(value) || typeof value.seq !== 'number' || typeof value.at !== 'string' || typeof value.type !== 'string' || !isJsonObject(value.payload)) return undefined;
  return spooledEvent(value.seq, value.at, value.type, value.payload);
}

function detail(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** One session's spool file; writes to it are serialized. */
export class SpoolFile {
  private chain: Promise<void> = Promise.resolve();
  private created: boolean;
  /** Bytes in the file, and how many of them are acknowledged events. */
  fileBytes: number;
  private ackedBytes = 0;

  constructor(readonly path: string, readonly info: SpoolSessionInfo, existingBytes?: number) {
    this.created = existingBytes !== undefined;
    this.fileBytes = existingBytes ?? 0;
  }

  /** Appends lines (the session line goes first the first time). */
  append(text: string): Promise<void> {
    return this.serialized(async () => {
      const content = this.created ? text : infoLine(this.info) + text;
      await writeFile(this.path, content, { flag: 'a' });
      this.created = true;
      this.fileBytes += Buffer.byteLength(content);
    });
  }

  /** Notes acknowledged bytes; rewrites the file with only `unacked` once enough of it is acknowledged. */
  acknowledged(bytes: number, unacked: readonly SpooledEvent[]): Promise<void> {
    this.ackedBytes += bytes;
    if (this.ackedBytes < COMPACT_BYTES || this.ackedBytes * 2 < this.fileBytes) return this.chain;
    return this.serialized(async () => {
      const content = infoLine(this.info) + unacked.map((event) => event.line).join('');
      const temporary = `${this.path}.tmp`;
      await writeFile(temporary, content);
      await rename(temporary, this.path);
      this.fileBytes = Buffer.byteLength(content);
      this.ackedBytes = 0;
    });
  }

  /** Done and acknowledged: the file goes. */
  remove(): Promise<void> {
    return this.serialized(async () => {
      await rm(this.path, { force: true });
      this.fileBytes = 0;
    });
  }

  /** Kept aside, no longer counted or sent (the operator refused the session for good). */
  quarantine(): Promise<void> {
    return this.serialized(async () => {
      await rename(this.path, `${this.path}.refused`).catch(() => undefined);
      this.fileBytes = 0;
    });
  }

  flushed(): Promise<void> {
    return this.chain;
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
    const events = lines.slice(1, -1).map(parseEvent).filter((event): event is SpooledEvent => event !== undefined);
    sessions.push({ info, events, fileBytes: Buffer.byteLength(text) });
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

// The operator's store of session recordings: one JSON-lines file per session (part) under a folder
// per day, `<dir>/<YYYY-MM-DD>/<session>.jsonl`, appended as events arrive from sidecars, chained by
// hash and sealed with a signed checkpoint when the session ends (api/recordings describes the
// format). Open sessions are sealed "interrupted" on shutdown, and files a crash left open are
// sealed the same way at the next start. A session that goes on after its file was sealed
// continues in `<session>.part2.jsonl`, linked to the previous part. Retention removes sealed
// files by age and by total size, oldest first.
import { mkdir, open, readdir, readFile, rm, rmdir, stat, truncate, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { GatehouseError } from '../../api/errors.js';
import type { Logger } from '../../api/logging/logger.js';
import { canonicalJson, isJsonObject, TooDeeplyNestedError, type JsonValue } from '../../api/recordings/canonical-json.js';
import type { CheckpointKeys, CheckpointPayload, CheckpointSigner } from '../../api/recordings/checkpoint.js';
import {
  headerHash, isEventLine, isSealLine, parseHeaderLine, RecordingChain, RECORDING_FORMAT_VERSION, toLine,
  type EventLine, type HeaderLine, type RecordingHeader, type SealStatus,
} from '../../api/recordings/recording-format.js';
import { verifyRecording } from '../../api/recordings/verify-recording.js';
import type { RecordingMetrics } from './recording-metrics.js';

const DAY_MS = 86_400_000;
/** Session ids become file names: UUIDs and the like, nothing that can climb out of the folder or look like a part suffix. */
const SESSION_ID = /^[A-Za-z0-9_-]{1,128}$/;
const DAY_FOLDER = /^\d{4}-\d{2}-\d{2}$/;
/** Sealed sessions remembered in memory (for re-sends and continuations); older ones are read back from disk. */
const REMEMBERED_SEALED = 10_000;

export interface RetentionOptions {
  /** Sealed recordings older than this (by last write) are deleted; undefined keeps them forever. */
  readonly maxAgeDays?: number;
  /** When recordings take more than this, the oldest sealed ones are deleted until they fit. */
  readonly maxTotalBytes?: number;
  /** How often retention runs; default 10 minutes. */
  readonly intervalMs?: number;
}

export interface RecordingStoreOptions {
  readonly dir: string;
  readonly signer: CheckpointSigner;
  readonly metrics: RecordingMetrics;
  readonly logger: Logger;
  readonly retention?: RetentionOptions;
  /**
   * A session with no event for this long is sealed interrupted (its sidecar vanished without
   * ending it); should events come after all, they continue in the next part. Default 1 hour.
   */
  readonly idleSealMs?: number;
  /** Epoch ms; Date.now by default. */
  readonly clock?: () => number;
}

/** What the sidecar says about the session, needed to open (or find) its file. */
export interface SessionStart {
  readonly identity: string;
  readonly resource: string;
  readonly protocol: string;
  readonly startedAt: string;
}

/** An event as received; the store checks its shape. */
export interface IncomingEvent {
  readonly seq: number;
  readonly at: string;
  readonly type: string;
  readonly payload: unknown;
}

export interface AppendRequest {
  /** The node its token proved: sessions belong to the node that started them. */
  readonly node: string;
  readonly session: string;
  readonly start?: SessionStart;
  /** In seq order. */
  readonly events: readonly IncomingEvent[];
}

/** How far the session is stored (re-sends included), and why the rest was refused, if it was. */
export interface AppendResult {
  readonly storedThrough: number;
  readonly error?: GatehouseError;
}

export interface RetentionReport {
  readonly deletedForAge: number;
  readonly deletedForSize: number;
  readonly remainingBytes: number;
}

interface OpenPart {
  readonly path: string;
  readonly chain: RecordingChain;
  readonly handle: FileHandle;
}

interface SessionState {
  readonly node: string;
  readonly day: string;
  readonly start: SessionStart;
  part: number;
  storedThrough: number;
  /** The last part's last hash, linking a continuation to it. */
  lastHash: string;
  open?: OpenPart;
  /** How the last part was sealed, when it is not open. */
  sealed?: SealStatus;
  /** When events last arrived (the store's clock), for idle sealing. */
  lastActivityMs: number;
}

/** The facts of a file read back from disk. */
interface FileFacts {
  readonly header: HeaderLine;
  readonly events: readonly EventLine[];
  readonly seal?: { readonly status: SealStatus; readonly checkpoint: string };
}

export function dayOf(iso: string, fallbackMs: number): string {
  const day = iso.slice(0, 10);
  return DAY_FOLDER.test(day) && !Number.isNaN(Date.parse(iso)) ? day : new Date(fallbackMs).toISOString().slice(0, 10);
}

export function partFileName(session: string, part: number): string {
  return part === 1 ? `${session}.jsonl` : `${session}.part${part}.jsonl`;
}

function errorDetail(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export class RecordingStore {
  private readonly sessions = new Map<string, SessionState>();
  private readonly queues = new Map<string, Promise<unknown>>();
  private readonly clock: () => number;
  private retentionTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private retentionRun: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(private readonly options: RecordingStoreOptions) {
    this.clock = options.clock ?? Date.now;
  }

  /** Creates the folder, seals what a crash left open, runs retention once and then on a timer. */
  static async open(options: RecordingStoreOptions): Promise<RecordingStore> {
    const store = new RecordingStore(options);
    await mkdir(options.dir, { recursive: true });
    await store.recover();
    const retention = options.retention;
    if (retention?.maxAgeDays !== undefined || retention?.maxTotalBytes !== undefined) {
      await store.enforceRetention();
      store.retentionTimer = setInterval(() => void store.enforceRetention().catch((error: unknown) => {
        options.logger.error({ err: errorDetail(error) }, 'recording retention failed');
      }), retention.intervalMs ?? 10 * 60_000);
      store.retentionTimer.unref();
    }
    const idleSealMs = options.idleSealMs ?? 3_600_000;
    store.idleTimer = setInterval(() => void store.sealIdle(idleSealMs), Math.max(10, Math.min(idleSealMs / 4, 60_000)));
    store.idleTimer.unref();
    return store;
  }

  get openSessions(): number {
    return [...this.sessions.values()].filter((state) => state.open !== undefined).length;
  }

  /** Stores the events of one session, in order; re-sent ones are acknowledged, not written twice. */
  append(request: AppendRequest): Promise<AppendResult> {
    if (this.closed) return Promise.resolve({ storedThrough: 0, error: new GatehouseError('GH_ERR_RECORDING_STORE_CLOSED') });
    return this.serialized(request.session, () => this.appendNow(request));
  }

  /** Seals every open session as interrupted and stops retention; later appends are refused. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.retentionTimer);
    clearInterval(this.idleTimer);
    await this.retentionRun.catch(() => undefined);
    await Promise.all([...this.queues.values()].map((queue) => queue.catch(() => undefined)));
    for (const [session, state] of this.sessions) {
      if (state.open === undefined) continue;
      await this.seal(session, state, 'interrupted').catch((error: unknown) => {
        this.options.logger.error({ session, err: errorDetail(error) }, 'could not seal a recording at shutdown');
      });
    }
  }

  /** Seals sessions whose sidecar went quiet for `idleMs`; returns how many. */
  async sealIdle(idleMs: number): Promise<number> {
    const now = this.clock();
    const idle = [...this.sessions.entries()].filter(([, state]) => state.open !== undefined && now - state.lastActivityMs >= idleMs);
    let sealed = 0;
    for (const [session] of idle) {
      await this.serialized(session, async () => {
        const state = this.sessions.get(session);
        // Checked again inside the queue: events may have arrived meanwhile.
        if (this.closed || state?.open === undefined || this.clock() - state.lastActivityMs < idleMs) return;
        this.options.logger.warn({ session, node: state.node, idleMs }, 'no events from the sidecar for too long; sealing the recording as interrupted');
        await this.seal(session, state, 'interrupted');
        sealed += 1;
      }).catch((error: unknown) => this.options.logger.error({ session, err: errorDetail(error) }, 'could not seal an idle recording'));
    }
    return sealed;
  }

  /**
   * Verifies every sealed recording against `keys` (the operator's public keys, current and past),
   * counting failures in gatehouse_recording_verification_failures_total; returns the failed paths.
   */
  async verifySealed(keys: CheckpointKeys): Promise<string[]> {
    const failed: string[] = [];
    for (const file of await this.listFiles()) {
      const text = await readFile(file.path, 'utf8').catch(() => undefined);
      if (text === undefined || !sealedText(text)) continue;
      const result = await verifyRecording(text.split('\n'), undefined, keys);
      if (result.status === 'intact') continue;
      failed.push(file.path);
      this.options.metrics.verificationFailures.inc();
      this.options.logger.error({ path: file.path, problems: result.status === 'tampered' ? result.problems : [] }, 'a sealed recording failed verification');
    }
    return failed;
  }

  private serialized<T>(session: string, work: () => Promise<T>): Promise<T> {
    const run = (this.queues.get(session) ?? Promise.resolve()).catch(() => undefined).then(work);
    this.queues.set(session, run);
    void run.finally(() => {
      if (this.queues.get(session) === run) this.queues.delete(session);
    }).catch(() => undefined);
    return run;
  }

  private refuse(reason: string, storedThrough: number, error: GatehouseError, count: number): AppendResult {
    this.options.metrics.refusedEvents.inc({ reason }, count);
    return { storedThrough, error };
  }

  private async appendNow(request: AppendRequest): Promise<AppendResult> {
    try {
      return await this.appendChecked(request);
    } catch (error) {
      // An unreadable existing file, a full disk, a folder that vanished: nothing of this batch counts as stored.
      const state = this.sessions.get(request.session);
      if (state?.open !== undefined) {
        await state.open.handle.close().catch(() => undefined);
        this.options.metrics.sessionsOpen.dec();
      }
      this.sessions.delete(request.session);
      this.options.logger.error({ session: request.session, err: errorDetail(error) }, 'could not store session events');
      const path = join(this.options.dir, state?.day ?? '?', partFileName(request.session, Math.max(1, state?.part ?? 1)));
      return this.refuse('write-failed', 0, new GatehouseError('GH_ERR_RECORDING_WRITE', { path, detail: errorDetail(error) }), request.events.length);
    }
  }

  private async appendChecked(request: AppendRequest): Promise<AppendResult> {
    const { session, node, events } = request;
    if (!SESSION_ID.test(session)) {
      return this.refuse('malformed', 0, new GatehouseError('GH_ERR_RECORDING_BAD_EVENT', { session: session.slice(0, 140), seq: events[0]?.seq ?? 0, detail: 'the session id must be 1 to 128 letters, digits, - or _' }), events.length);
    }
    const state = this.sessions.get(session) ?? (request.start ? await this.find(session, node, request.start) : undefined);
    if (state === undefined) return this.refuse('no-session-info', 0, new GatehouseError('GH_ERR_RECORDING_NO_SESSION_INFO', { session }), events.length);
    if (state.node !== node) {
      this.options.logger.warn({ session, node, owner: state.node }, 'a node tried to write another node\'s session recording');
      // Says nothing of how far the other node's session got.
      return this.refuse('not-owner', 0, new GatehouseError('GH_ERR_RECORDING_NOT_OWNER', { node, session, owner: state.node }), events.length);
    }
    state.lastActivityMs = this.clock();
    let lines = '';
    let sealAfter = false;
    let refusal: AppendResult | undefined;
    const types = new Map<string, number>();
    for (let index = 0; index < events.length; index += 1) {
      const event = events[index]!;
      const left = events.length - index;
      if (event.seq <= state.storedThrough) {
        this.options.metrics.duplicateEvents.inc();
        continue;
      }
      // Checked before a part is opened for it: an event too deep to hash would leave a new file empty.
      const problem = malformation(event) ?? (state.open === undefined ? hashingProblem(event) : undefined);
      if (problem !== undefined) {
        refusal = this.refuse('malformed', state.storedThrough, new GatehouseError('GH_ERR_RECORDING_BAD_EVENT', { session, seq: event.seq, detail: problem }), left);
        break;
      }
      // A session the store has no file of starts wherever the sidecar's spool starts (its file may have been
      // lost or removed by retention); the header's firstSeq then shows where the recording begins.
      if (state.part === 0 && state.storedThrough === 0 && lines === '') state.storedThrough = event.seq - 1;
      if (event.seq !== state.storedThrough + 1 || sealAfter) {
        const detail = { session, expected: state.storedThrough + 1, got: event.seq };
        refusal = this.refuse('seq-gap', state.storedThrough, new GatehouseError('GH_ERR_RECORDING_SEQ_GAP', detail), left);
        break;
      }
      const part = state.open ?? (await this.openPart(session, state));
      let line: string;
      try {
        line = part.chain.appendLine({ seq: event.seq, at: event.at, type: event.type, payload: event.payload as { readonly [key: string]: JsonValue } });
      } catch (error) {
        // JSON.parse takes any depth; hashing does not. Refused like any other malformed event (the chain is unchanged).
        if (!(error instanceof TooDeeplyNestedError)) throw error;
        refusal = this.refuse('malformed', state.storedThrough, new GatehouseError('GH_ERR_RECORDING_BAD_EVENT', { session, seq: event.seq, detail: `the payload is ${error.message}` }), left);
        break;
      }
      lines += line;
      state.storedThrough = event.seq;
      types.set(event.type, (types.get(event.type) ?? 0) + 1);
      if (event.type === 'end') sealAfter = true;
    }
    if (lines !== '') {
      const part = state.open!;
      // A failed write throws to appendNow: nothing counts as stored and the state is read back from the file next time.
      await this.write(part, lines);
      for (const [type, count] of types) this.options.metrics.events.inc({ type }, count);
      state.lastHash = part.chain.lastHash;
    }
    if (sealAfter) await this.seal(session, state, 'sealed');
    return refusal ?? { storedThrough: state.storedThrough };
  }

  private async write(part: OpenPart, text: string): Promise<void> {
    const bytes = Buffer.from(text, 'utf8');
    await part.handle.appendFile(bytes);
    // Acknowledged events leave the sidecar's spool for good: they must be on disk before the answer,
    // not in the page cache of a node that may crash.
    await part.handle.datasync();
    this.options.metrics.bytesWritten.inc(bytes.length);
  }

  /** The session's state from its files on disk, or a new one when it has none. */
  private async find(session: string, node: string, start: SessionStart): Promise<SessionState> {
    const day = dayOf(start.startedAt, this.clock());
    let part = 1;
    let facts: FileFacts | undefined;
    for (;;) {
      const found = await readFacts(join(this.options.dir, day, partFileName(session, part))).catch((error: unknown) => {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw error;
      });
      if (found === undefined) break;
      facts = found;
      part += 1;
    }
    const state: SessionState = facts === undefined
      ? { node, day, start, part: 0, storedThrough: 0, lastHash: '', lastActivityMs: this.clock() }
      : {
          node: facts.header.node,
          day,
          start: { identity: facts.header.identity, resource: facts.header.resource, protocol: facts.header.protocol, startedAt: facts.header.startedAt },
          part: part - 1,
          storedThrough: facts.events.at(-1)?.seq ?? facts.header.firstSeq - 1,
          lastHash: facts.events.at(-1)?.hash ?? facts.header.hash,
          // Recovery seals every file at start; one still unsealed is treated as cut off.
          sealed: facts.seal?.status ?? 'interrupted',
          lastActivityMs: this.clock(),
        };
    this.remember(session, state);
    return state;
  }

  private remember(session: string, state: SessionState): void {
    this.sessions.set(session, state);
    if (this.sessions.size <= REMEMBERED_SEALED) return;
    for (const [key, candidate] of this.sessions) {
      if (candidate.open === undefined && !this.queues.has(key)) {
        this.sessions.delete(key);
        return;
      }
    }
  }

  /** Opens the next part of the session: part 1 for a new session, a continuation after a sealed one. */
  private async openPart(session: string, state: SessionState): Promise<OpenPart> {
    const part = state.part + 1;
    const header: RecordingHeader = {
      kind: 'header', version: RECORDING_FORMAT_VERSION, session, node: state.node, identity: state.start.identity, resource: state.start.resource,
      protocol: state.start.protocol, startedAt: state.start.startedAt, part, firstSeq: state.storedThrough + 1,
      ...(part > 1 ? { previousPartHash: state.lastHash } : {}),
    };
    const folder = join(this.options.dir, state.day);
    await mkdir(folder, { recursive: true });
    const path = join(folder, partFileName(session, part));
    const handle = await open(path, 'wx');
    // The new file's directory entry is made durable too, or a crash could keep the data and lose the name.
    await syncDirectory(folder);
    const chain = RecordingChain.start(header);
    const opened: OpenPart = { path, chain, handle };
    state.open = opened;
    state.part = part;
    state.sealed = undefined;
    this.options.metrics.sessionsOpen.inc();
    await this.write(opened, toLine(chain.header));
    return opened;
  }

  private async seal(session: string, state: SessionState, status: SealStatus): Promise<void> {
    const part = state.open;
    if (part === undefined) return;
    const { chain } = part;
    const payload: Omit<CheckpointPayload, 'kid'> = {
      session, part: chain.header.part, node: state.node, status, events: chain.events, firstSeq: chain.header.firstSeq,
      lastSeq: chain.expectedSeq - 1, headerHash: chain.header.hash, lastHash: chain.lastHash, sealedAt: new Date(this.clock()).toISOString(),
      ...(chain.firstAt !== undefined ? { firstAt: chain.firstAt } : {}),
      ...(chain.lastAt !== undefined ? { lastAt: chain.lastAt } : {}),
    };
    const checkpoint = await this.options.signer.sign(payload);
    try {
      await this.write(part, toLine({ kind: 'seal', status, checkpoint }));
    } finally {
      await part.handle.close().catch(() => undefined);
      state.open = undefined;
      state.sealed = status;
      this.options.metrics.sessionsOpen.dec();
    }
    this.options.metrics.sessionsSealed.inc({ status });
    this.options.logger.info({ session, part: chain.header.part, events: chain.events, status }, 'session recording sealed');
  }

  /** Files without a seal were cut off by a crash: a torn last line is dropped, then they are sealed interrupted. */
  private async recover(): Promise<void> {
    for (const file of await this.listFiles()) {
      const text = await readFile(file.path, 'utf8');
      if (sealedText(text)) continue;
      const whole = text.slice(0, text.lastIndexOf('\n') + 1);
      if (whole.length !== text.length) {
        this.options.logger.warn({ path: file.path, bytes: text.length - whole.length }, 'dropping the torn last line of a recording a crash cut off');
        await truncate(file.path, Buffer.byteLength(whole));
      }
      const result = await verifyRecording(whole.split('\n'), undefined, new Map());
      if (result.status !== 'open') {
        this.options.metrics.verificationFailures.inc();
        this.options.logger.error({ path: file.path, problems: result.status === 'tampered' ? result.problems : [] }, 'an unsealed recording failed verification; left unsealed for inspection');
        continue;
      }
      await this.sealRecovered(file.path, result.header, whole);
    }
  }

  private async sealRecovered(path: string, header: HeaderLine, text: string): Promise<void> {
    const events = text.split('\n').slice(1).filter((line) => line !== '').map((line) => JSON.parse(line) as EventLine);
    const chain = new RecordingChain(header, events.length === 0 ? undefined : {
      lastHash: events.at(-1)!.hash, lastSeq: events.at(-1)!.seq, count: events.length, firstAt: events[0]!.at, lastAt: events.at(-1)!.at,
    });
    const handle = await open(path, 'a');
    const state: SessionState = {
      node: header.node, day: '', start: header, part: header.part, storedThrough: chain.expectedSeq - 1, lastHash: chain.lastHash,
      open: { path, chain, handle }, lastActivityMs: this.clock(),
    };
    this.options.metrics.sessionsOpen.inc();
    await this.seal(header.session, state, 'interrupted');
  }

  /** Every recording file: path, size, last write, day. */
  private async listFiles(): Promise<{ path: string; size: number; mtimeMs: number; day: string }[]> {
    const days = (await readdir(this.options.dir, { withFileTypes: true })).filter((entry) => entry.isDirectory() && DAY_FOLDER.test(entry.name));
    const files = [];
    for (const day of days) {
      for (const name of await readdir(join(this.options.dir, day.name))) {
        if (!name.endsWith('.jsonl')) continue;
        const path = join(this.options.dir, day.name, name);
        const info = await stat(path).catch(() => undefined);
        if (info?.isFile()) files.push({ path, size: info.size, mtimeMs: info.mtimeMs, day: day.name });
      }
    }
    return files;
  }

  /** Deletes sealed files past the age limit, then the oldest sealed ones while the total is above the size cap. */
  enforceRetention(): Promise<RetentionReport> {
    const run = this.retentionRun.catch(() => undefined).then(() => this.retentionPass());
    this.retentionRun = run;
    return run;
  }

  private async retentionPass(): Promise<RetentionReport> {
    const retention = this.options.retention ?? {};
    const openPaths = new Set([...this.sessions.values()].flatMap((state) => (state.open ? [state.open.path] : [])));
    const files = (await this.listFiles()).sort((a, b) => a.mtimeMs - b.mtimeMs);
    let total = files.reduce((sum, file) => sum + file.size, 0);
    let deletedForAge = 0;
    let deletedForSize = 0;
    const deletable = files.filter((file) => !openPaths.has(file.path));
    const cutoff = retention.maxAgeDays === undefined ? -Infinity : this.clock() - retention.maxAgeDays * DAY_MS;
    for (const file of deletable) {
      const tooOld = file.mtimeMs < cutoff;
      const tooBig = retention.maxTotalBytes !== undefined && total > retention.maxTotalBytes;
      if (!tooOld && !tooBig) continue;
      await rm(file.path, { force: true });
      total -= file.size;
      this.forget(file.path);
      if (tooOld) deletedForAge += 1;
      else deletedForSize += 1;
      this.options.metrics.retentionDeletions.inc({ reason: tooOld ? 'age' : 'size' });
      await rmdir(join(this.options.dir, file.day)).catch(() => undefined);
    }
    this.options.metrics.retentionBytes.set(total);
    if (deletedForAge + deletedForSize > 0) this.options.logger.info({ deletedForAge, deletedForSize, remainingBytes: total }, 'recording retention deleted files');
    return { deletedForAge, deletedForSize, remainingBytes: total };
  }

  /** A deleted file's session is read back from disk if it comes again. */
  private forget(path: string): void {
    for (const [session, state] of this.sessions) {
      if (state.open === undefined && path.includes(`${session}.`)) this.sessions.delete(session);
    }
  }
}

/** Why an event's payload cannot be hashed (nested too deeply), or undefined. */
function hashingProblem(event: IncomingEvent): string | undefined {
  try {
    canonicalJson(event.payload);
    return undefined;
  } catch (error) {
    if (error instanceof TooDeeplyNestedError) return `the payload is ${error.message}`;
    throw error;
  }
}

function malformation(event: IncomingEvent): string | undefined {
  if (!Number.isSafeInteger(event.seq) || event.seq < 1) return 'seq must be a positive integer';
  if (event.type === '' || event.type.length > 64) return 'type must be 1 to 64 characters';
  if (Number.isNaN(Date.parse(event.at))) return 'at must be an ISO time';
  if (!isJsonObject(event.payload)) return 'payload must be a JSON object';
  return undefined;
}

function sealedText(text: string): boolean {
  const lines = text.split('\n').filter((line) => line !== '');
  const last = lines.at(-1);
  if (last === undefined) return false;
  try {
    return isSealLine(JSON.parse(last));
  } catch {
    return false;
  }
}

async function readFacts(path: string): Promise<FileFacts> {
  const lines = (await readFile(path, 'utf8')).split('\n').filter((line) => line !== '');
  const header = parseHeaderLine(JSON.parse(lines[0] ?? 'null'));
  if (typeof header === 'string' || headerHash(header) !== header.hash) throw new Error(`${path}: not a recording`);
  const events: EventLine[] = [];
  let seal: FileFacts['seal'];
  for (const line of lines.slice(1)) {
    const value: unknown = JSON.parse(line);
    if (isEventLine(value)) events.push(value);
    else if (isSealLine(value)) seal = { status: value.status, checkpoint: value.checkpoint };
  }
  return { header, events, ...(seal ? { seal } : {}) };
}

async function syncDirectory(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

// Session recordings in local mode: the sidecar's events go straight into a RecordingStore in the
// same process (no spool, no upload: nothing lies between them to fail), so a dev session gets the
// same tamper-evident files a cluster operator writes. The checkpoint key is made per run; its
// public half is added to a JWKS file in the folder, so `gatehouse sessions verify` works on every
// run's recordings out of the box.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { JWK } from 'jose';
import type { Registry } from 'prom-client';
import type { Logger } from '../../api/logging/logger.js';
import type { JsonValue } from '../../api/recordings/canonical-json.js';
import { generateCheckpointSigner } from '../../api/recordings/checkpoint.js';
import { createRecordingMetrics } from '../../operator/recordings/recording-metrics.js';
import { RecordingStore, type IncomingEvent, type SessionStart } from '../../operator/recordings/recording-store.js';
import { eventTimestamp, type SessionEvent, type SessionInfo, type SessionRecorder, type SessionRecording } from '../../sidecar/recording/session-recorder.js';

/**
 * The JWKS of every local run's key. A dot file, so `gatehouse sessions verify` does not report it as
 * a stray file; it sits beside the recordings only because a dev folder has no operator to ask.
 */
export const LOCAL_RECORDING_KEYS_FILE = '.recording-keys.jwks.json';

export interface LocalRecordings {
  readonly recorder: SessionRecorder;
  readonly store: RecordingStore;
  /** The JWKS file to pass to `gatehouse sessions verify --key`. */
  readonly keysFile: string;
  /** Seals what is still open (interrupted); call after the recorder's sessions ended. */
  close(): Promise<void>;
}

async function publishKey(file: string, jwk: JWK): Promise<void> {
  let keys: JWK[] = [];
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as { keys?: unknown };
    if (Array.isArray(parsed.keys)) keys = parsed.keys as JWK[];
  } catch {
    // No file yet, or an unreadable one: start a new set (earlier runs' recordings then need their own key).
  }
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify({ keys: [...keys.filter((key) => key.kid !== jwk.kid), jwk] }, null, 2)}\n`);
  await rename(temporary, file);
}

export async function startLocalRecordings(options: { readonly dir: string; readonly node: string; readonly registry: Registry; readonly logger: Logger }): Promise<LocalRecordings> {
  const logger = options.logger.child({ component: 'recordings' });
  await mkdir(options.dir, { recursive: true });
  const signer = await generateCheckpointSigner();
  const keysFile = join(options.dir, LOCAL_RECORDING_KEYS_FILE);
  await publishKey(keysFile, signer.publicJwk);
  const store = await RecordingStore.open({ dir: options.dir, signer, metrics: createRecordingMetrics(options.registry), logger });
  const recorder = new StoreSessionRecorder(store, options.node, logger);
  logger.info({ dir: options.dir, keys: keysFile, kid: signer.kid }, 'session recordings stored in this process');
  return { recorder, store, keysFile, close: () => store.close() };
}

/** The event's fields other than type and at, as the uploader sends them. */
function payloadOf(event: SessionEvent): { readonly [key: string]: JsonValue } {
  const { type: _type, at: _at, ...rest } = event;
  return rest as unknown as { readonly [key: string]: JsonValue };
}

/** One session's events not yet stored, appended in order by one flush at a time. */
class SessionQueue {
  private nextSeq = 1;
  private pending: IncomingEvent[] = [];
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly store: RecordingStore,
    private readonly node: string,
    private readonly session: string,
    private readonly start: SessionStart,
    private readonly logger: Logger,
  ) {}

  add(type: string, at: string, payload: { readonly [key: string]: JsonValue }): void {
    this.pending.push({ seq: this.nextSeq, at, type, payload });
    this.nextSeq += 1;
    this.flushing ??= this.flush();
  }

  /** Resolves once everything added so far was offered to the store. */
  async drain(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  /** Everything pending goes in one append, so a busy session costs one write per flush, not per event. */
  private async flush(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const events = this.pending;
        const result = await this.store.append({ node: this.node, session: this.session, start: this.start, events }).catch((error: unknown) => ({
          storedThrough: 0, error: error instanceof Error ? error : new Error(String(error)),
        }));
        this.pending = this.pending.filter((event) => event.seq > result.storedThrough);
        if (result.error) {
          // In one process nobody would re-send: what the store refused is lost, and said so loudly.
          const code = 'code' in result.error ? String(result.error.code) : undefined;
          this.logger.error({ session: this.session, code, err: result.error.message, lost: this.pending.length }, 'session events could not be recorded');
          this.pending = [];
        }
      }
    } finally {
      this.flushing = undefined;
    }
  }
}

class StoreSessionRecorder implements SessionRecorder {
  private readonly queues = new Set<SessionQueue>();

  constructor(
    private readonly store: RecordingStore,
    private readonly node: string,
    private readonly logger: Logger,
  ) {}

  open(info: SessionInfo): SessionRecording {
    const start: SessionStart = { identity: info.identity, resource: info.resource, protocol: info.protocol, startedAt: eventTimestamp() };
    const queue = new SessionQueue(this.store, this.node, info.session, start, this.logger);
    this.queues.add(queue);
    let ended = false;
    return {
      write: (event) => {
        if (!ended) queue.add(event.type, event.at, payloadOf(event));
      },
      end: async () => {
        if (ended) return;
        ended = true;
        queue.add('end', eventTimestamp(), {});
        await queue.drain();
        this.queues.delete(queue);
      },
    };
  }

  /** Waits for what is in flight; sessions not ended are sealed interrupted when the store closes. */
  async close(): Promise<void> {
    await Promise.all([...this.queues].map((queue) => queue.drain()));
  }
}

// Splits one direction of a PostgreSQL byte stream into whole messages (frames), whatever the
// chunking of the socket reads. Frames are views into the received buffers, so the pass-through
// fast path forwards them without copying; bytes are only copied when a frame straddles reads.
import { GatehouseError } from '../../../api/errors.js';

export interface Frame {
  /** The type byte; STARTUP_FRAME_TYPE for the untyped startup-phase messages. */
  readonly type: number;
  /** The message body after the header: for startup frames it starts with the Int32 version or request code. */
  readonly payload: Buffer;
  /** The whole frame, header included, for forwarding untouched. */
  readonly raw: Buffer;
}

/**
 * A frame as the splitter cuts it: where it lies in the received bytes, with its `raw` and
 * `payload` views made only when asked for (most frames are forwarded by position, never looked into).
 */
export class ReceivedFrame implements Frame {
  constructor(
    readonly type: number,
    /** The received bytes the frame lies in, from `start` (its first header byte) to `end`. */
    readonly source: Buffer,
    readonly start: number,
    readonly end: number,
    private readonly headerBytes: number,
  ) {}

  get raw(): Buffer {
    return this.source.subarray(this.start, this.end);
  }

  get payload(): Buffer {
    return this.source.subarray(this.start + this.headerBytes, this.end);
  }
}

/** `startup`: untyped frames (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest); `regular`: typed frames. */
export type FramePhase = 'startup' | 'regular';
/** Which peer produced the stream; named in errors. */
export type FrameSource = 'client' | 'server';

export const STARTUP_FRAME_TYPE = 0;
/** A server may send up to PostgreSQL's 1 GiB allocation limit (e.g. a huge DataRow). */
export const DEFAULT_MAX_SERVER_FRAME_BYTES = 1024 ** 3;
/** Clients get a tighter default: memory held for a half-received message is a denial-of-service lever. */
export const DEFAULT_MAX_CLIENT_FRAME_BYTES = 64 * 1024 ** 2;
/** PostgreSQL's own MAX_STARTUP_PACKET_LENGTH. */
export const MAX_STARTUP_FRAME_BYTES = 10_000;
/** Length word plus request code. */
const MIN_STARTUP_FRAME_BYTES = 8;

export interface FrameSplitterOptions {
  readonly source: FrameSource;
  /** Defaults to `regular`. */
  readonly phase?: FramePhase;
  /** Largest whole frame accepted; defaults by source. */
  readonly maxFrameBytes?: number;
}

const EMPTY = Buffer.alloc(0);

export class FrameSplitter {
  phase: FramePhase;
  private readonly source: FrameSource;
  private readonly maxFrameBytes: number;
  /** The buffer frames are cut from, consumed up to `offset`. */
  private current: Buffer = EMPTY;
  private offset = 0;
  /** Chunks received after `current`, joined only once a frame needs them. */
  private readonly queued: Buffer[] = [];
  private queuedBytes = 0;
  /** A framing error poisons the splitter: the stream can no longer be trusted to resynchronise. */
  private failure: GatehouseError | undefined;

  constructor(options: FrameSplitterOptions) {
    this.source = options.source;
    this.phase = options.phase ?? 'regular';
    this.maxFrameBytes = options.maxFrameBytes
      ?? (options.source === 'client' ? DEFAULT_MAX_CLIENT_FRAME_BYTES : DEFAULT_MAX_SERVER_FRAME_BYTES);
  }

  /** Bytes received but not yet returned as frames. */
  get bufferedBytes(): number {
    return this.current.length - this.offset + this.queuedBytes;
  }

  /** Adds received bytes. The splitter keeps views into `chunk`, so the caller must not reuse it. */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.bufferedBytes === 0) {
      this.current = chunk;
      this.offset = 0;
    } else {
      this.queued.push(chunk);
      this.queuedBytes += chunk.length;
    }
  }

  /**
   * The next whole frame, or `undefined` until more bytes arrive. Throws GatehouseError
   * (GH_ERR_PG_FRAME_LENGTH, GH_ERR_PG_FRAME_TOO_LARGE) on a corrupt or oversized header, and again
   * on every later call. The phase may be changed between calls; it applies to the next frame.
   */
  next(): ReceivedFrame | undefined {
    if (this.failure) throw this.failure;
    const headerBytes = this.phase === 'startup' ? 4 : 5;
    if (!this.gather(headerBytes)) return undefined;
    const frameBytes = this.frameBytesAt(this.offset, headerBytes);
    if (!this.gather(frameBytes)) return undefined;
    const source = this.current;
    const start = this.offset;
    const end = start + frameBytes;
    const type = headerBytes === 5 ? source[start] : STARTUP_FRAME_TYPE;
    if (end === source.length && this.queuedBytes === 0) {
      // All read: let go of the chunk, so an idle session does not keep the memory it was read into.
      this.current = EMPTY;
      this.offset = 0;
    } else {
      this.offset = end;
    }
    return new ReceivedFrame(type, source, start, end, headerBytes);
  }

  /** Hands over every buffered byte (e.g. the start of a TLS handshake) and empties the splitter. */
  takeRemaining(): Buffer {
    const remaining = this.queued.length === 0
      ? this.current.subarray(this.offset)
      : Buffer.concat([this.current.subarray(this.offset), ...this.queued], this.bufferedBytes);
    this.current = EMPTY;
    this.offset = 0;
    this.queued.length = 0;
    this.queuedBytes = 0;
    return remaining;
  }

  /** Reads and checks the length word of the frame at `start`; returns the whole frame size. */
  private frameBytesAt(start: number, headerBytes: number): number {
    const length = this.current.readInt32BE(start + headerBytes - 4);
    const frameBytes = length + headerBytes - 4;
    const startup = headerBytes === 4;
    const minimum = startup ? MIN_STARTUP_FRAME_BYTES : 4;
    const maximum = startup ? Math.min(MAX_STARTUP_FRAME_BYTES, this.maxFrameBytes) : this.maxFrameBytes;
    if (length < minimum || (startup && length > maximum)) {
      this.failure = new GatehouseError('GH_ERR_PG_FRAME_LENGTH', { source: this.source, length, minimum, maximum });
    } else if (frameBytes > maximum) {
      this.failure = new GatehouseError('GH_ERR_PG_FRAME_TOO_LARGE', { source: this.source, length: frameBytes, limit: maximum });
    }
    if (this.failure) throw this.failure;
    return frameBytes;
  }

  /**
   * Makes `needed` bytes contiguous in `current` from `offset`, if that many are buffered. Only a
   * frame that straddles reads is copied, and only its own bytes: what follows it in the last read
   * it takes bytes from stays queued as a view. So a frame that arrives in many reads costs one copy
   * when it completes, and the frames after it are not copied at all.
   */
  private gather(needed: number): boolean {
    if (this.current.length - this.offset >= needed) return true;
    if (this.bufferedBytes < needed) return false;
    while (this.current.length === this.offset && this.queued.length > 0) this.promoteQueued();
    if (this.current.length - this.offset >= needed) return true;
    const joined = Buffer.allocUnsafe(needed);
    let filled = this.current.copy(joined, 0, this.offset);
    while (filled < needed) {
      const chunk = this.queued[0] as Buffer;
      const taken = Math.min(chunk.length, needed - filled);
      filled += chunk.copy(joined, filled, 0, taken);
      if (taken === chunk.length) this.queued.shift();
      else this.queued[0] = chunk.subarray(taken);
      this.queuedBytes -= taken;
    }
    this.current = joined;
    this.offset = 0;
    return true;
  }

  private promoteQueued(): void {
    const chunk = this.queued.shift() as Buffer;
    this.queuedBytes -= chunk.length;
    this.current = chunk;
    this.offset = 0;
  }
}

// Collects what one socket read produces for the other side, to be written at once. Frames that
// pass through untouched lie in the received chunk; consecutive ones are merged back into a single
// view, so a read whose frames all pass through is written as the chunk itself, without a copy.
import type { ReceivedFrame } from './frame-splitter.js';

/** Memory for frames an encoder writes in place; see FrameBatch.allocate. */
export interface FrameAllocator {
  allocate(size: number): Buffer;
}

/** Slab size without a received chunk to go by (a socket read is at most 64 KiB). */
const SLAB_BYTES = 64 * 1024;

export class FrameBatch implements FrameAllocator {
  private readonly parts: Buffer[] = [];
  /**
   * The buffer the run of adjacent bytes being merged lies in, and the run's extent in it. Runs are
   * keyed by the Buffer object, not its ArrayBuffer: `Buffer#buffer` and `#byteOffset` are C++
   * getters, too slow to call for every frame of every read.
   */
  private run: Buffer | undefined;
  private runStart = 0;
  private runEnd = 0;
  /** Where allocate() carves frames from: consecutive ones are adjacent, so they merge into one run. */
  private slab: Buffer | undefined;
  private slabUsed = 0;
  /** The last frame allocate() handed out, and where it lies in the slab. */
  private allocated: Buffer | undefined;
  private allocatedAt = 0;

  /** @param received the chunk the frames are cut from, handed back as it is when nothing changed */
  constructor(private readonly received?: Buffer) {}

  /** A frame to forward as received. */
  addFrame(frame: ReceivedFrame): void {
    this.addRange(frame.source, frame.start, frame.end - frame.start);
  }

  /** Bytes the sidecar made (a replacement, an injected message); frames to pass on go through addFrame. */
  add(bytes: Buffer): void {
    if (bytes === this.allocated) this.addRange(this.slab!, this.allocatedAt, bytes.length);
    else this.addRange(bytes, 0, bytes.length);
  }

  /**
   * `size` bytes for a frame the caller writes and then adds. Frames allocated and added one after
   * another (re-encoded rows) lie next to each other and go out as one run: no buffer of their
   * own, no joining copy.
   */
  allocate(size: number): Buffer {
    if (this.slab === undefined || this.slabUsed + size > this.slab.length) {
      // What masking makes of a read is about as long as the read: a small result gets a small slab.
      this.slab = Buffer.allocUnsafe(Math.max(size, this.received?.length ?? SLAB_BYTES));
      this.slabUsed = 0;
    }
    const bytes = this.slab.subarray(this.slabUsed, this.slabUsed + size);
    this.allocated = bytes;
    this.allocatedAt = this.slabUsed;
    this.slabUsed += size;
    return bytes;
  }

  /** Everything added, in order, as one buffer (copied only when it is not one run); empties the batch. */
  take(): Buffer | undefined {
    if (this.parts.length === 0 && this.isReceivedChunk()) {
      this.run = undefined;
      return this.received;
    }
    this.closeRun();
    const { parts } = this;
    if (parts.length === 0) return undefined;
    const all = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    parts.length = 0;
    return all;
  }

  private addRange(memory: Buffer, offset: number, length: number): void {
    if (memory === this.run && offset === this.runEnd) {
      this.runEnd += length;
      return;
    }
    this.closeRun();
    this.run = memory;
    this.runStart = offset;
    this.runEnd = offset + length;
  }

  private isReceivedChunk(): boolean {
    const { received } = this;
    return received !== undefined && this.run === received && this.runStart === 0 && this.runEnd === received.length;
  }

  private closeRun(): void {
    const { run } = this;
    if (run === undefined) return;
    this.parts.push(this.runStart === 0 && this.runEnd === run.length ? run : run.subarray(this.runStart, this.runEnd));
    this.run = undefined;
  }
}

// Awaitable server frames for the startup exchange: the socket's 'data' events feed a FrameSplitter
// and `next()` resolves with whole frames. `release()` hands the socket back paused, together with
// any bytes read past the last frame, so the proxy loses nothing when it takes over.
import type { Socket } from 'node:net';
import { FrameSplitter, type Frame } from '../protocol/frame-splitter.js';

/** Startup messages are small; a server sending more than this before ReadyForQuery is misbehaving. */
const MAX_STARTUP_FRAME_BYTES = 1024 * 1024;

interface Waiter {
  resolve(frame: Frame): void;
  reject(error: unknown): void;
}

export class UpstreamFrameReader {
  private readonly splitter = new FrameSplitter({ source: 'server', maxFrameBytes: MAX_STARTUP_FRAME_BYTES });
  private waiter: Waiter | undefined;
  private failure: unknown;
  private closed = false;

  constructor(
    private readonly socket: Socket,
    /** The error for a connection that closes while a frame is awaited. */
    private readonly whenClosed: () => Error,
  ) {
    socket.on('data', this.onData);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
    socket.resume();
  }

  next(): Promise<Frame> {
    return new Promise<Frame>((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.settle();
    });
  }

  /** Stops reading: pauses the socket, detaches, and returns the bytes received but not yet framed. */
  release(): Buffer {
    this.socket.pause();
    this.socket.off('data', this.onData);
    this.socket.off('error', this.onError);
    this.socket.off('close', this.onClose);
    return this.splitter.takeRemaining();
  }

  private readonly onData = (chunk: Buffer): void => {
    this.splitter.push(chunk);
    // Nobody is reading yet: stop the socket rather than buffer a flood.
    if (this.waiter === undefined && this.splitter.bufferedBytes > MAX_STARTUP_FRAME_BYTES) this.socket.pause();
    this.settle();
  };

  private readonly onError = (error: Error): void => {
    this.failure ??= error;
    this.settle();
  };

  private readonly onClose = (): void => {
    this.closed = true;
    this.settle();
  };

  /** Gives the waiter a frame if one is complete, else the failure if the stream is over. */
  private settle(): void {
    const waiter = this.waiter;
    if (waiter === undefined) return;
    let frame: Frame | undefined;
    try {
      frame = this.splitter.next();
    } catch (error) {
      this.failure ??= error;
    }
    if (frame === undefined && this.failure === undefined && !this.closed) {
      this.socket.resume();
      return;
    }
    this.waiter = undefined;
    if (frame !== undefined) waiter.resolve(frame);
    else waiter.reject(this.failure ?? this.whenClosed());
  }
}

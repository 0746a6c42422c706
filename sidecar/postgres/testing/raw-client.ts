// Test client that speaks the PostgreSQL wire protocol byte by byte with the repo's own codec, for
// what real clients never send: FunctionCall, malformed or oversized frames, half a message. It
// keeps every byte received so tests can search them (no masked value may appear in any form).
import { connect, type Socket } from 'node:net';
import { decodeBackendMessage, type BackendMessage } from '../protocol/backend-messages.js';
import { FrameSplitter } from '../protocol/frame-splitter.js';
import { encodeStartupMessage } from '../protocol/startup-messages.js';

export class RawClient {
  /** Every byte the sidecar sent, in order. */
  private readonly chunks: Buffer[] = [];
  private readonly splitter = new FrameSplitter({ source: 'server' });
  private readonly messages: BackendMessage[] = [];
  private waiter: (() => void) | undefined;
  private closed_ = false;
  private readonly closedPromise: Promise<void>;
  /** Set when the stream could not be split into messages (e.g. the single-byte SSL answer). */
  rawOnly = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => undefined);
    this.closedPromise = new Promise((resolve) => socket.on('close', () => {
      this.closed_ = true;
      this.waiter?.();
      resolve();
    }));
  }

  static open(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port }, () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  /** Opens a connection and completes the startup; resolves after the first ReadyForQuery. */
  static async started(port: number, parameters: Record<string, string> = { user: 'whoever', database: 'whatever' }): Promise<RawClient> {
    const client = await RawClient.open(port);
    client.send(encodeStartupMessage(parameters));
    await client.untilReady();
    return client;
  }

  get received(): Buffer {
    return Buffer.concat(this.chunks);
  }

  get isClosed(): boolean {
    return this.closed_;
  }

  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Messages received up to and including the next ReadyForQuery (or up to the close). */
  async untilReady(timeoutMs = 10_000): Promise<BackendMessage[]> {
    return this.until((message) => message.kind === 'ReadyForQuery', timeoutMs);
  }

  /** Messages up to and including the first one `done` accepts; rejects on timeout, resolves early on close. */
  async until(done: (message: BackendMessage) => boolean, timeoutMs = 10_000): Promise<BackendMessage[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.messages.findIndex(done);
      if (index >= 0) return this.messages.splice(0, index + 1);
      if (this.closed_) return this.messages.splice(0);
      if (Date.now() > deadline) throw new Error(`timed out; got ${this.messages.map((m) => m.kind).join(', ')}`);
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
        setTimeout(resolve, 50);
      });
    }
  }

  /** Resolves when the sidecar has closed the connection. */
  async closed(timeoutMs = 10_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('connection still open')), timeoutMs);
    });
    await Promise.race([this.closedPromise, timeout]).finally(() => clearTimeout(timer));
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.chunks.push(chunk);
    if (!this.rawOnly) {
      try {
        this.splitter.push(chunk);
        for (let frame = this.splitter.next(); frame; frame = this.splitter.next()) this.messages.push(decodeBackendMessage(frame));
      } catch {
        this.rawOnly = true;
      }
    }
    this.waiter?.();
  }
}

/** The fields of the first ErrorResponse among `messages`, by field code (C, M, D, S, ...). */
export function firstError(messages: readonly BackendMessage[]): ReadonlyMap<string, string> | undefined {
  for (const message of messages) if (message.kind === 'ErrorResponse') return message.fields;
  return undefined;
}

// A log destination for tests: collects what pino writes, to prove what does (and never does) reach a log.
import { Writable } from 'node:stream';

export class LogCapture extends Writable {
  private readonly chunks: string[] = [];
  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    this.chunks.push(chunk.toString('utf8'));
    done();
  }
  /** Everything written so far. */
  get text(): string {
    return this.chunks.join('');
  }
}

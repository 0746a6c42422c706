// Builds one outgoing message: the type byte (absent for startup-phase messages), the Int32 length
// and the fields, in one buffer that grows by doubling. Values that would corrupt the stream (a NUL
// inside a string, an integer out of range) are refused with GH_ERR_PG_ENCODE_INVALID, because a
// frame written wrong desynchronises the whole connection, and a smuggled NUL could inject messages.
import { GatehouseError } from '../../../api/errors.js';

const MAX_LENGTH = 0x7fffffff;

export class FrameWriter {
  private buffer: Buffer;
  private offset: number;
  private readonly lengthAt: number;

  /**
   * @param type the message type byte, or `undefined` for an untyped startup-phase message
   * @param message name used in error messages
   * @param sizeHint expected frame size, to allocate once in the common case
   */
  constructor(type: number | undefined, private readonly message: string, sizeHint = 64) {
    this.buffer = Buffer.allocUnsafe(Math.max(sizeHint, 8));
    this.offset = 0;
    if (type !== undefined) this.buffer[this.offset++] = type;
    this.lengthAt = this.offset;
    this.offset += 4;
  }

  uint8(value: number, field: string): this {
    this.checkInteger(value, 0, 0xff, field);
    this.reserve(1);
    this.buffer[this.offset++] = value;
    return this;
  }

  int16(value: number, field: string): this {
    this.checkInteger(value, -0x8000, 0x7fff, field);
    this.reserve(2);
    this.offset = this.buffer.writeInt16BE(value, this.offset);
    return this;
  }

  int32(value: number, field: string): this {
    this.checkInteger(value, -0x80000000, 0x7fffffff, field);
    this.reserve(4);
    this.offset = this.buffer.writeInt32BE(value, this.offset);
    return this;
  }

  uint32(value: number, field: string): this {
    this.checkInteger(value, 0, 0xffffffff, field);
    this.reserve(4);
    this.offset = this.buffer.writeUInt32BE(value, this.offset);
    return this;
  }

  cstring(value: string, field: string): this {
    if (value.includes('\0')) this.fail(`${field} contains a NUL character`);
    const length = Buffer.byteLength(value, 'utf8');
    this.reserve(length + 1);
    this.offset += this.buffer.write(value, this.offset, 'utf8');
    this.buffer[this.offset++] = 0;
    return this;
  }

  bytes(value: Uint8Array): this {
    this.reserve(value.length);
    this.buffer.set(value, this.offset);
    this.offset += value.length;
    return this;
  }

  /** Int32 length then the bytes; `null` is written as length -1 (SQL NULL). */
  nullableBytes(value: Uint8Array | null): this {
    if (value === null) return this.int32(-1, 'length');
    this.reserve(4 + value.length);
    this.offset = this.buffer.writeInt32BE(value.length, this.offset);
    return this.bytes(value);
  }

  /** Int16 count then each value as Int16. */
  int16Array(values: readonly number[], field: string): this {
    this.int16(values.length, `${field} count`);
    for (const value of values) this.int16(value, field);
    return this;
  }

  /** Patches the length and returns the frame (a view of the written bytes). */
  finish(): Buffer {
    const length = this.offset - this.lengthAt;
    if (length > MAX_LENGTH) this.fail(`message of ${length} bytes exceeds the protocol maximum`);
    this.buffer.writeInt32BE(length, this.lengthAt);
    return this.buffer.subarray(0, this.offset);
  }

  private reserve(bytes: number): void {
    const needed = this.offset + bytes;
    if (needed <= this.buffer.length) return;
    const grown = Buffer.allocUnsafe(Math.max(needed, this.buffer.length * 2));
    this.buffer.copy(grown, 0, 0, this.offset);
    this.buffer = grown;
  }

  private checkInteger(value: number, min: number, max: number, field: string): void {
    if (!Number.isInteger(value) || value < min || value > max) {
      this.fail(`${field} ${value} is not an integer in [${min}, ${max}]`);
    }
  }

  private fail(detail: string): never {
    throw new GatehouseError('GH_ERR_PG_ENCODE_INVALID', { message: this.message, detail });
  }
}

// A bounds-checked cursor over one message payload. Every read that would run past the end, every
// string without its NUL and every count that cannot fit becomes GH_ERR_PG_MALFORMED_MESSAGE, so the
// decoders built on it never throw anything but a GatehouseError.
import { isUtf8 } from 'node:buffer';
import { GatehouseError } from '../../../api/errors.js';

/**
 * How strings are turned into text. Frontend strings are `strict`: a policy must judge exactly the
 * text the server will run, so bytes that are not UTF-8 are refused rather than replaced.
 * Backend strings are `lenient`: they are only shown or logged, and the server may use another encoding.
 */
export type StringDecoding = 'strict' | 'lenient';

export class PayloadReader {
  private offset = 0;

  constructor(
    private readonly payload: Buffer,
    /** Message name for error messages, e.g. "Bind". */
    private readonly message: string,
    private readonly strings: StringDecoding,
  ) {}

  get remaining(): number {
    return this.payload.length - this.offset;
  }

  /** Bytes consumed so far: where the next read starts. */
  get position(): number {
    return this.offset;
  }

  fail(detail: string): never {
    throw new GatehouseError('GH_ERR_PG_MALFORMED_MESSAGE', { message: this.message, detail });
  }

  uint8(): number {
    this.need(1, 'a byte');
    return this.payload[this.offset++];
  }

  int16(): number {
    this.need(2, 'an Int16');
    const value = this.payload.readInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  int32(): number {
    this.need(4, 'an Int32');
    const value = this.payload.readInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  uint32(): number {
    this.need(4, 'an Int32');
    const value = this.payload.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  /** An Int16 count of items each at least `itemBytes` long; refuses counts the payload cannot hold. */
  count16(what: string, itemBytes: number): number {
    const count = this.int16();
    if (count < 0) this.fail(`negative ${what} count ${count}`);
    if (count * itemBytes > this.remaining) this.fail(`${what} count ${count} does not fit in the message`);
    return count;
  }

  cstring(what: string): string {
    const end = this.payload.indexOf(0, this.offset);
    if (end < 0) this.fail(`${what} is not NUL-terminated`);
    const bytes = this.payload.subarray(this.offset, end);
    if (this.strings === 'strict' && !isUtf8(bytes)) this.fail(`${what} is not valid UTF-8`);
    this.offset = end + 1;
    return bytes.toString('utf8');
  }

  /** `length` bytes as a view into the payload (no copy). */
  bytes(length: number, what: string): Buffer {
    if (length < 0) this.fail(`negative ${what} length ${length}`);
    this.need(length, what);
    const view = this.payload.subarray(this.offset, this.offset + length);
    this.offset += length;
    return view;
  }

  /** An Int32 length and that many bytes; length -1 is SQL NULL. */
  nullableBytes(what: string): Buffer | null {
    const length = this.int32();
    if (length === -1) return null;
    return this.bytes(length, what);
  }

  /**
   * Like nullableBytes, but only steps over the value: returns its length (-1 for SQL NULL), the
   * bytes being the `length` before `position`. `index` numbers the value in error messages.
   */
  skipNullableBytes(what: string, index: number): number {
    const length = this.int32();
    if (length === -1) return -1;
    if (length < 0) this.fail(`negative ${what} ${index} length ${length}`);
    if (this.remaining < length) this.fail(`truncated: expected ${what} ${index}, ${this.remaining} byte(s) left`);
    this.offset += length;
    return length;
  }

  rest(): Buffer {
    return this.bytes(this.remaining, 'data');
  }

  int16Array(count: number): number[] {
    const values = new Array<number>(count);
    for (let i = 0; i < count; i++) values[i] = this.int16();
    return values;
  }

  /** Asserts the payload is fully consumed: trailing bytes mean the peer and we disagree on the layout. */
  end(): void {
    if (this.remaining !== 0) this.fail(`${this.remaining} unexpected trailing byte(s)`);
  }

  private need(bytes: number, what: string): void {
    if (this.remaining < bytes) this.fail(`truncated: expected ${what}, ${this.remaining} byte(s) left`);
  }
}

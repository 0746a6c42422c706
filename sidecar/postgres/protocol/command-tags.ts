// Reads the tag of a CommandComplete ("SELECT 1", "INSERT 0 5") and the row count at its end, for
// the session recording. A session sends the same few tags over and over, so the last one is
// remembered and reused when the frame's bytes are the same: a byte comparison instead of a UTF-8
// decode into a new string and a parse of its digits, once per statement.
import type { ReceivedFrame } from './frame-splitter.js';

export interface CommandTag {
  /** The tag as the server wrote it; '' for a frame without a NUL-terminated tag. */
  readonly tag: string;
  /** The number the tag ends with (rows affected or returned), 0 when it ends with none. */
  readonly rows: number;
}

const NO_TAG: CommandTag = { tag: '', rows: 0 };

/** The number after the tag's last space, when that is all digits; else 0. */
export function rowsOfTag(tag: string): number {
  const start = tag.lastIndexOf(' ') + 1;
  if (start >= tag.length) return 0;
  for (let index = start; index < tag.length; index += 1) {
    const code = tag.charCodeAt(index);
    if (code < 0x30 || code > 0x39) return 0;
  }
  return Number(tag.slice(start));
}

export class CommandTagReader {
  private last: CommandTag = NO_TAG;

  /** The tag of a CommandComplete frame (type byte 'C'), read in place. */
  read(frame: ReceivedFrame): CommandTag {
    const end = frame.end - 1;
    const start = frame.start + 5;
    const source = frame.source;
    if (end < start || source[end] !== 0) return NO_TAG;
    const last = this.last;
    if (last.tag.length === end - start && this.sameBytes(source, start, last.tag)) return last;
    const tag = source.toString('utf8', start, end);
    this.last = { tag, rows: rowsOfTag(tag) };
    return this.last;
  }

  /** Whether source[start...] holds `tag`'s characters as single bytes (tags are ASCII; others never match). */
  private sameBytes(source: Buffer, start: number, tag: string): boolean {
    for (let index = 0; index < tag.length; index += 1) {
      const code = tag.charCodeAt(index);
      if (code > 0x7f || source[start + index] !== code) return false;
    }
    return true;
  }
}

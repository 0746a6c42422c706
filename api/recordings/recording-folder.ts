// Reading a folder of recordings as the operator's store lays it out (`<dir>/<YYYY-MM-DD>/<session>.jsonl`,
// continuations `<session>.partN.jsonl`): which sessions are there, their parts in order, and each
// file's header, events and seal, read leniently (a damaged line is reported, not fatal) for
// listing and replay. Proving a file intact is verify-recording.ts's job, not this module's.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { GatehouseError } from '../errors.js';
import { isEventLine, isSealLine, parseHeaderLine, type EventLine, type HeaderLine, type SealStatus } from './recording-format.js';

const DAY_FOLDER = /^\d{4}-\d{2}-\d{2}$/;
const PART_FILE = /^([A-Za-z0-9_-]+?)(?:\.part(\d+))?\.jsonl$/;

export interface RecordingFileRef {
  readonly path: string;
  readonly session: string;
  readonly part: number;
}

export interface RecordingFile {
  readonly ref: RecordingFileRef;
  readonly text: string;
  readonly header: HeaderLine;
  readonly events: readonly EventLine[];
  readonly seal?: SealStatus;
  /** Lines that are not records (1-based), for a warning. */
  readonly damagedLines: readonly number[];
}

/** The recording files under `dir`, grouped by session, parts in order; files that do not look like recordings in `ignored`. */
export async function listRecordingFiles(dir: string): Promise<{ sessions: Map<string, RecordingFileRef[]>; ignored: string[] }> {
  const info = await stat(dir).catch(() => undefined);
  if (!info?.isDirectory()) throw new GatehouseError('GH_ERR_RECORDING_DIR', { path: dir });
  const sessions = new Map<string, RecordingFileRef[]>();
  const ignored: string[] = [];
  for (const day of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    if (!day.isDirectory() || !DAY_FOLDER.test(day.name)) {
      if (!day.name.startsWith('.')) ignored.push(join(dir, day.name));
      continue;
    }
    for (const name of (await readdir(join(dir, day.name))).sort()) {
      const match = PART_FILE.exec(name);
      const path = join(dir, day.name, name);
      if (!match) {
        ignored.push(path);
        continue;
      }
      const ref = { path, session: match[1]!, part: match[2] === undefined ? 1 : Number(match[2]) };
      const parts = sessions.get(ref.session) ?? [];
      parts.push(ref);
      sessions.set(ref.session, parts);
    }
  }
  for (const parts of sessions.values()) parts.sort((a, b) => a.part - b.part);
  return { sessions, ignored };
}

/** Reads one file leniently; throws GH_ERR_RECORDING_UNREADABLE when even the header is unusable. */
export async function readRecordingFile(ref: RecordingFileRef): Promise<RecordingFile> {
  const text = await readFile(ref.path, 'utf8');
  const lines = text.split('\n');
  let first: unknown;
  try {
    first = JSON.parse(lines[0] ?? '');
  } catch {
    first = undefined;
  }
  const header = parseHeaderLine(first);
  if (typeof header === 'string') throw new GatehouseError('GH_ERR_RECORDING_UNREADABLE', { path: ref.path, detail: header });
  const events: EventLine[] = [];
  const damagedLines: number[] = [];
  let seal: SealStatus | undefined;
  lines.slice(1).forEach((line, index) => {
    if (line === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      value = undefined;
    }
    if (isEventLine(value)) events.push(value);
    else if (isSealLine(value)) seal = value.status;
    else damagedLines.push(index + 2);
  });
  return { ref, text, header, events, damagedLines, ...(seal ? { seal } : {}) };
}

/** The session's files: by exact id, else by a unique id prefix (UUIDs are long to type). */
export function findSession(sessions: ReadonlyMap<string, RecordingFileRef[]>, wanted: string, dir: string): RecordingFileRef[] {
  const exact = sessions.get(wanted);
  if (exact) return exact;
  const matches = [...sessions.keys()].filter((session) => session.startsWith(wanted));
  if (matches.length === 1) return sessions.get(matches[0]!)!;
  if (matches.length > 1) throw new GatehouseError('GH_ERR_USAGE', { detail: `session prefix ${wanted} matches ${matches.length} sessions (${matches.slice(0, 3).join(', ')}…); give more of the id` });
  throw new GatehouseError('GH_ERR_RECORDING_UNKNOWN_SESSION', { session: wanted, dir });
}

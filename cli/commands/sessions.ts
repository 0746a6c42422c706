// `gatehouse sessions list|show|replay|verify --dir DIR`: reads the operator's recordings folder.
// list: one line per session; show: its events as a table; replay: the session as it happened,
// with its original timing (--speed, --no-wait); verify: proves each file intact against the
// operator's public key (--key) or names every problem (file, line, seq, what) and exits 1.
import { readFile } from 'node:fs/promises';
import { relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { GatehouseError, isGatehouseError } from '../../api/errors.js';
import { parseCheckpointKeys, type CheckpointKeys } from '../../api/recordings/checkpoint.js';
import { findSession, listRecordingFiles, readRecordingFile, type RecordingFile, type RecordingFileRef } from '../../api/recordings/recording-folder.js';
import type { EventLine } from '../../api/recordings/recording-format.js';
import { verifyRecording, type RecordingProblem } from '../../api/recordings/verify-recording.js';
import type { CliCommand, CliIO } from '../io.js';

const USAGE = 'gatehouse sessions list|show SESSION|replay SESSION|verify [SESSION...] --dir DIR [--key JWKS-or-PEM] [--speed N] [--no-wait] [--allow-open] [--json]';

interface Options {
  readonly dir: string;
  readonly shownDir: string;
  readonly key?: string;
  readonly speed: number;
  readonly wait: boolean;
  readonly allowOpen: boolean;
  readonly json: boolean;
}

export const sessionsCommand: CliCommand = {
  path: ['sessions'],
  summary: 'list, show, replay and verify tamper-evident session recordings from the operator\'s recordings folder',
  usage: USAGE,
  async run(args, io) {
    const { values, positionals } = parseArgs({
      args,
      options: {
        dir: { type: 'string' },
        key: { type: 'string' },
        speed: { type: 'string', default: '1' },
        'no-wait': { type: 'boolean', default: false },
        'allow-open': { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
      },
      allowPositionals: true,
    });
    const [action, ...sessions] = positionals;
    if (values.dir === undefined) throw new GatehouseError('GH_ERR_USAGE', { detail: 'sessions needs the recordings folder: --dir DIR' });
    const speed = Number(values.speed);
    if (!(speed > 0) || !Number.isFinite(speed)) throw new GatehouseError('GH_ERR_USAGE', { detail: `--speed must be a positive number, got ${values.speed}` });
    const options: Options = {
      dir: resolve(io.cwd, values.dir), shownDir: values.dir, speed, wait: !values['no-wait'], allowOpen: values['allow-open'], json: values.json,
      ...(values.key !== undefined ? { key: resolve(io.cwd, values.key) } : {}),
    };
    switch (action) {
      case 'list':
        return list(options, io);
      case 'show':
        return show(oneSession(action, sessions), options, io);
      case 'replay':
        return replay(oneSession(action, sessions), options, io);
      case 'verify':
        return verify(sessions, options, io);
      default:
        throw new GatehouseError('GH_ERR_USAGE', { detail: action === undefined ? `sessions needs an action: ${USAGE}` : `unknown sessions action "${action}"; use list, show, replay or verify` });
    }
  },
};

function oneSession(action: string, sessions: readonly string[]): string {
  if (sessions.length === 1) return sessions[0]!;
  throw new GatehouseError('GH_ERR_USAGE', { detail: `sessions ${action} takes one session id, got ${sessions.length}` });
}

/** Every part of a session, read leniently; unreadable parts are reported and skipped. */
async function readParts(refs: readonly RecordingFileRef[], io: CliIO, options: Options): Promise<RecordingFile[]> {
  const files: RecordingFile[] = [];
  for (const ref of refs) {
    try {
      const file = await readRecordingFile(ref);
      if (file.damagedLines.length > 0) io.stderr(`warning: ${shown(ref.path, options)}: line(s) ${file.damagedLines.join(', ')} are not records; run \`gatehouse sessions verify\`\n`);
      files.push(file);
    } catch (error) {
      if (!isGatehouseError(error)) throw error;
      io.stderr(`warning: skipped ${shown(ref.path, options)}: ${error.message}\n`);
    }
  }
  return files;
}

function shown(path: string, options: Options): string {
  const inside = relative(options.dir, path);
  return inside.startsWith('..') ? path : `${options.shownDir.replace(/\/+$/, '')}/${inside}`;
}

interface SessionSummary {
  readonly session: string;
  readonly identity: string;
  readonly resource: string;
  readonly node: string;
  readonly startedAt: string;
  readonly durationMs: number | null;
  readonly events: number;
  readonly status: 'sealed' | 'interrupted' | 'open';
  readonly parts: number;
}

function summarize(session: string, files: readonly RecordingFile[]): SessionSummary | undefined {
  const first = files[0];
  const last = files.at(-1);
  if (first === undefined || last === undefined) return undefined;
  const events = files.flatMap((file) => file.events);
  const lastAt = events.at(-1)?.at;
  const durationMs = lastAt === undefined ? null : Math.max(0, Date.parse(lastAt) - Date.parse(first.header.startedAt));
  return {
    session, identity: first.header.identity, resource: first.header.resource, node: first.header.node, startedAt: first.header.startedAt,
    durationMs: Number.isNaN(durationMs) ? null : durationMs, events: events.length, status: last.seal ?? 'open', parts: files.length,
  };
}

export function formatDuration(ms: number | null): string {
  if (ms === null) return '-';
  if (ms < 1000) return `${ms}ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${Math.round(seconds % 60)}s`;
  return `${Math.floor(minutes / 60)}h${minutes % 60}m`;
}

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  ').trimEnd()).join('\n') + '\n';
}

async function list(options: Options, io: CliIO): Promise<number> {
  const { sessions, ignored } = await listRecordingFiles(options.dir);
  for (const path of ignored) io.stderr(`warning: ignored ${shown(path, options)}: not a recording (expected DAY/SESSION.jsonl)\n`);
  const summaries: SessionSummary[] = [];
  for (const [session, refs] of sessions) {
    const summary = summarize(session, await readParts(refs, io, options));
    if (summary) summaries.push(summary);
  }
  summaries.sort((a, b) => a.startedAt.localeCompare(b.startedAt) || a.session.localeCompare(b.session));
  if (options.json) {
    io.stdout(`${JSON.stringify(summaries, null, 2)}\n`);
    return 0;
  }
  if (summaries.length === 0) {
    io.stdout(`no recordings under ${options.shownDir}\n`);
    return 0;
  }
  const rows = summaries.map((summary) => [
    summary.session, summary.identity, summary.resource, summary.startedAt, formatDuration(summary.durationMs), String(summary.events),
    summary.parts > 1 ? `${summary.status} (${summary.parts} parts)` : summary.status,
  ]);
  io.stdout(table([['SESSION', 'IDENTITY', 'RESOURCE', 'STARTED', 'DURATION', 'EVENTS', 'STATUS'], ...rows]));
  return 0;
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : value === undefined ? '' : JSON.stringify(value);
}

/** One line saying what the event was, for show and replay. */
export function describeEvent(event: EventLine): string {
  const payload = event.payload;
  switch (event.type) {
    case 'statement': {
      const rule = payload.rule === undefined ? '' : ` rule=${text(payload.rule)}`;
      const parameters = Array.isArray(payload.parameters) ? ` params=${JSON.stringify(payload.parameters)}` : '';
      return `[${text(payload.decision)} ${text(payload.operation)}${rule}] ${text(payload.text)}${parameters}`;
    }
    case 'complete':
      return `${text(payload.command)} rows=${text(payload.rows)} ${text(payload.durationMs)}ms`;
    case 'error':
      return `${text(payload.code)} ${text(payload.message)}`;
    case 'connect':
      return Object.entries(payload.client ?? {}).map(([key, value]) => `${key}=${text(value)}`).join(' ');
    case 'disconnect':
      return `${text(payload.reason)} after ${text(payload.durationMs)}ms`;
    case 'gap':
      return `${text(payload.lost)} event(s) lost: the sidecar's spool was full`;
    case 'end':
      return payload.reason === undefined ? 'session closed' : text(payload.reason);
    default:
      return JSON.stringify(payload);
  }
}

function offset(event: EventLine, startMs: number): string {
  const ms = Date.parse(event.at) - startMs;
  return Number.isNaN(ms) ? '?' : `+${(ms / 1000).toFixed(3)}s`;
}

async function sessionFiles(session: string, options: Options, io: CliIO): Promise<RecordingFile[]> {
  const { sessions } = await listRecordingFiles(options.dir);
  const files = await readParts(findSession(sessions, session, options.shownDir), io, options);
  if (files.length === 0) throw new GatehouseError('GH_ERR_RECORDING_UNREADABLE', { path: session, detail: 'none of its files could be read' });
  return files;
}

async function show(session: string, options: Options, io: CliIO): Promise<number> {
  const files = await sessionFiles(session, options, io);
  const summary = summarize(files[0]!.header.session, files)!;
  const events = files.flatMap((file) => file.events);
  if (options.json) {
    io.stdout(`${JSON.stringify({ ...summary, events: events.map(({ seq, at, type, payload }) => ({ seq, at, type, payload })) }, null, 2)}\n`);
    return 0;
  }
  io.stdout(`session ${summary.session}: ${summary.identity} on ${summary.resource} from ${summary.node}, started ${summary.startedAt}, ${summary.events} events, ${summary.status}\n\n`);
  const startMs = Date.parse(summary.startedAt);
  const rows = events.map((event) => [String(event.seq), event.at, offset(event, startMs), event.type, describeEvent(event)]);
  io.stdout(table([['SEQ', 'TIME', 'OFFSET', 'TYPE', 'DETAIL'], ...rows]));
  return 0;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted || ms <= 0) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

const REPLAY_MARKS: Readonly<Record<string, string>> = { statement: '=>', complete: '<=', error: '!!', connect: '--', disconnect: '--', end: '--', gap: '??' };

async function replay(session: string, options: Options, io: CliIO): Promise<number> {
  const files = await sessionFiles(session, options, io);
  const header = files[0]!.header;
  const startMs = Date.parse(header.startedAt);
  io.stdout(`replaying session ${header.session}: ${header.identity} on ${header.resource} (${header.protocol}), started ${header.startedAt}${options.wait ? ` at ${options.speed}x` : ''}\n`);
  let previousMs = startMs;
  for (const event of files.flatMap((file) => file.events)) {
    const atMs = Date.parse(event.at);
    // The original gap between two events, scaled; clocks that went backwards do not wait.
    if (options.wait && !Number.isNaN(atMs)) await sleep((atMs - previousMs) / options.speed, io.signal);
    if (io.signal.aborted) return 130;
    if (!Number.isNaN(atMs)) previousMs = atMs;
    io.stdout(`${offset(event, startMs).padStart(10)} ${REPLAY_MARKS[event.type] ?? '..'} ${event.type.padEnd(10)} ${describeEvent(event)}\n`);
  }
  const status = files.at(-1)!.seal ?? 'open';
  io.stdout(`end of recording (${status})\n`);
  return 0;
}

async function loadKeys(options: Options): Promise<CheckpointKeys> {
  if (options.key === undefined) throw new GatehouseError('GH_ERR_RECORDING_NO_KEY');
  try {
    return await parseCheckpointKeys(await readFile(options.key, 'utf8'));
  } catch (error) {
    throw new GatehouseError('GH_ERR_RECORDING_KEY', { path: options.key, detail: error instanceof Error ? error.message : String(error) }, { cause: error });
  }
}

interface FileProblem extends RecordingProblem {
  readonly file: string;
}

async function verifyFile(ref: RecordingFileRef, keys: CheckpointKeys, options: Options): Promise<{ problems: FileProblem[]; ok?: string; lastHash?: string; lastSeq?: number; header?: { part: number; firstSeq: number; previousPartHash?: string } }> {
  const file = shown(ref.path, options);
  const result = await verifyRecording((await readFile(ref.path, 'utf8')).split('\n'), undefined, keys);
  if (result.status === 'tampered') return { problems: result.problems.map((problem) => ({ file, ...problem })) };
  const header = { part: result.header.part, firstSeq: result.header.firstSeq, ...(result.header.previousPartHash ? { previousPartHash: result.header.previousPartHash } : {}) };
  if (result.header.session !== ref.session) {
    return { problems: [{ file, kind: 'bad-header', line: 1, message: `the file is named for session ${ref.session} but records session ${result.header.session}` }] };
  }
  if (result.status === 'open') {
    const problem: FileProblem = { file, kind: 'truncated', message: 'no seal: the session is still being recorded, or its seal and any events after it were cut off' };
    return options.allowOpen
      ? { problems: [], ok: `${file}: chain intact, open (not sealed yet), ${result.events} events`, lastHash: result.lastHash, lastSeq: result.header.firstSeq + result.events - 1, header }
      : { problems: [problem] };
  }
  const { checkpoint } = result;
  return { problems: [], ok: `${file}: intact, ${checkpoint.status}, ${checkpoint.events} events, key ${checkpoint.kid.slice(0, 12)}…`, lastHash: checkpoint.lastHash, lastSeq: checkpoint.lastSeq, header };
}

async function verify(wanted: readonly string[], options: Options, io: CliIO): Promise<number> {
  const keys = await loadKeys(options);
  const { sessions, ignored } = await listRecordingFiles(options.dir);
  const problems: FileProblem[] = ignored.map((path) => ({ file: shown(path, options), kind: 'malformed' as const, message: 'not a recording file (expected DAY/SESSION.jsonl); something else was put in the recordings folder' }));
  const chosen = wanted.length === 0 ? [...sessions.values()] : wanted.map((session) => findSession(sessions, session, options.shownDir));
  let intact = 0;
  for (const refs of chosen) {
    let previous: { lastHash?: string; lastSeq?: number } | undefined;
    for (const [index, ref] of refs.entries()) {
      const result = await verifyFile(ref, keys, options);
      problems.push(...result.problems, ...partProblems(ref, index, result, previous, options));
      if (result.ok !== undefined && result.problems.length === 0) {
        intact += 1;
        if (!options.json) io.stdout(`ok  ${result.ok}\n`);
      }
      previous = result.lastHash !== undefined ? result : undefined;
    }
  }
  if (options.json) io.stdout(`${JSON.stringify({ intact, problems }, null, 2)}\n`);
  else {
    for (const problem of problems) io.stdout(`BAD ${problem.file}${problem.line !== undefined ? `:${problem.line}` : ''}${problem.seq !== undefined ? ` seq ${problem.seq}` : ''}: ${problem.kind}: ${problem.message}\n`);
    io.stdout(`${intact} file(s) intact, ${problems.length} problem(s)\n`);
  }
  return problems.length === 0 ? 0 : 1;
}

/** A continuation must start where the previous part's checkpoint ended, and say so in its header. */
function partProblems(ref: RecordingFileRef, index: number, result: { header?: { part: number; firstSeq: number; previousPartHash?: string } }, previous: { lastHash?: string; lastSeq?: number } | undefined, options: Options): FileProblem[] {
  const header = result.header;
  if (header === undefined) return [];
  const file = shown(ref.path, options);
  if (header.part !== ref.part) return [{ file, kind: 'bad-header', line: 1, message: `the file is named part ${ref.part} but its header says part ${header.part}` }];
  if (index === 0 && header.part !== 1) return [{ file, kind: 'missing', message: `part ${header.part} is the first file of this session: the earlier part(s) are gone` }];
  if (index === 0 || previous === undefined) return [];
  if (header.previousPartHash !== previous.lastHash || header.firstSeq !== (previous.lastSeq ?? 0) + 1) {
    return [{ file, kind: 'broken-link', line: 1, message: `part ${header.part} does not continue where part ${header.part - 1} was sealed (seq ${previous.lastSeq})` }];
  }
  return [];
}

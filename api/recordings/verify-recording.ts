// Proves a recording whole, or says exactly where it is not: every line is checked against its own
// hash, its link to the line before, its place in the sequence, and the file against the signed
// checkpoint (count, last hash, header hash, session). Used by `gatehouse sessions verify` and by
// the operator's store when it recovers files after a crash.
import { TooDeeplyNestedError } from './canonical-json.js';
import { verifyCheckpoint, type CheckpointKeys, type CheckpointPayload } from './checkpoint.js';
import { eventHash, headerHash, isEventLine, isSealLine, parseHeaderLine, type EventLine, type HeaderLine, type SealLine } from './recording-format.js';

export type RecordingProblemKind =
  | 'malformed' // a line that is not JSON or not a record
  | 'truncated' // the file ends inside a line, or before the checkpoint's last event
  | 'bad-header'
  | 'edited' // a line's content no longer matches its hash, or was rewritten with a new hash
  | 'broken-link' // a line does not link to the one before it
  | 'missing' // sequence numbers skipped: events dropped
  | 'out-of-order'
  | 'inserted' // a sequence number seen twice
  | 'appended' // events after the seal or past the checkpoint's last one
  | 'bad-checkpoint'
  | 'unknown-key'
  | 'bad-signature'
  | 'checkpoint-mismatch'; // a valid signature over another file's (or state's) facts

export interface RecordingProblem {
  readonly kind: RecordingProblemKind;
  /** 1-based line in the file. */
  readonly line?: number;
  readonly seq?: number;
  readonly message: string;
}

export type RecordingVerification =
  /** Chain and checkpoint agree. */
  | { readonly status: 'intact'; readonly header: HeaderLine; readonly events: number; readonly checkpoint: CheckpointPayload }
  /** The chain is intact but nothing seals it: a session still being written, or one whose seal and tail were cut off. */
  | { readonly status: 'open'; readonly header: HeaderLine; readonly events: number; readonly lastHash: string }
  | { readonly status: 'tampered'; readonly header?: HeaderLine; readonly problems: readonly RecordingProblem[] };

interface ParsedLine {
  readonly line: number;
  readonly value: unknown;
}

/** What a walk over the event lines found. */
interface Walk {
  readonly events: EventLine[];
  readonly eventLines: number[];
  seal?: { readonly line: number; readonly value: SealLine };
  readonly problems: RecordingProblem[];
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * Verifies a recording given as `text.split('\n')`: writers end every line with a newline, so a
 * last element that is not empty is a line cut short. `checkpoint` is the JWS to hold the file to;
 * undefined takes the one from the file's seal line. `keys` are the operator's public keys.
 */
export async function verifyRecording(lines: readonly string[], checkpoint: string | undefined, keys: CheckpointKeys): Promise<RecordingVerification> {
  const endsWithNewline = lines.length > 0 && lines[lines.length - 1] === '';
  const body = endsWithNewline ? lines.slice(0, -1) : [...lines];
  if (body.length === 0) return { status: 'tampered', problems: [{ kind: 'truncated', line: 1, message: 'the file is empty: even the header is gone' }] };
  const header = parseHeaderLine(parse(body[0]!));
  if (typeof header === 'string') {
    const kind = body.length === 1 && !endsWithNewline ? 'truncated' : 'bad-header';
    return { status: 'tampered', problems: [{ kind, line: 1, message: header }] };
  }
  const problems: RecordingProblem[] = [];
  if (headerHash(header) !== header.hash) problems.push({ kind: 'bad-header', line: 1, message: 'the session header was edited: it does not match its hash' });
  const walk = walkEvents(header, body.map((text, index) => ({ line: index + 1, value: text })).slice(1), endsWithNewline);
  problems.push(...walk.problems);
  const jws = checkpoint ?? walk.seal?.value.checkpoint;
  if (checkpoint !== undefined && walk.seal !== undefined && walk.seal.value.checkpoint !== checkpoint) {
    problems.push({ kind: 'checkpoint-mismatch', line: walk.seal.line, message: 'the seal in the file holds a different checkpoint than the one given' });
  }
  const lastHash = walk.events.at(-1)?.hash ?? header.hash;
  if (jws === undefined) return problems.length > 0 ? { status: 'tampered', header, problems } : { status: 'open', header, events: walk.events.length, lastHash };
  const checked = await verifyCheckpoint(jws, keys);
  if (!checked.ok) {
    problems.push({ kind: checked.kind, ...(walk.seal ? { line: walk.seal.line } : {}), message: checked.message });
    return { status: 'tampered', header, problems };
  }
  problems.push(...compareWithCheckpoint(header, walk, checked.payload, problems.length > 0));
  if (walk.seal !== undefined && walk.seal.value.status !== checked.payload.status) {
    problems.push({ kind: 'checkpoint-mismatch', line: walk.seal.line, message: `the seal line says ${walk.seal.value.status} but the checkpoint says ${checked.payload.status}` });
  }
  return problems.length > 0 ? { status: 'tampered', header, problems } : { status: 'intact', header, events: walk.events.length, checkpoint: checked.payload };
}

/** Checks every line after the header: its own hash, its link, its sequence number; finds the seal. */
function walkEvents(header: HeaderLine, lines: readonly { line: number; value: string }[], endsWithNewline: boolean): Walk {
  const parsed: ParsedLine[] = lines.map(({ line, value }) => ({ line, value: parse(value) }));
  const seqLines = new Map<number, number>();
  for (const { line, value } of parsed) if (isEventLine(value) && !seqLines.has(value.seq)) seqLines.set(value.seq, line);
  const walk: Walk = { events: [], eventLines: [], problems: [] };
  let prevHash = header.hash;
  let prevLine = 1;
  let prevSelfConsistent = true;
  /** After a line with a problem, the next one's link is not judged again: the break is already named. */
  let prevFlagged = false;
  let expected = header.firstSeq;
  const seen = new Map<number, number>();
  for (const [index, { line, value }] of parsed.entries()) {
    const last = index === parsed.length - 1;
    if (value === undefined) {
      const cut = last && !endsWithNewline;
      walk.problems.push({ kind: cut ? 'truncated' : 'malformed', line, message: cut ? 'the file ends inside this line: it was cut short' : 'the line is not JSON' });
      continue;
    }
    if (walk.seal !== undefined) {
      walk.problems.push({ kind: 'appended', line, ...(isEventLine(value) ? { seq: value.seq } : {}), message: `a line after the seal (line ${walk.seal.line}): added after the session was sealed` });
      continue;
    }
    if (isSealLine(value)) {
      walk.seal = { line, value };
      continue;
    }
    if (!isEventLine(value)) {
      walk.problems.push({ kind: 'malformed', line, message: 'the line is neither an event nor a seal' });
      continue;
    }
    const selfConsistent = hashMatches(value);
    const problem: LocatedProblem | undefined = sequenceProblem(value.seq, expected, line, seen, seqLines) ??
      (!selfConsistent ? { kind: 'edited' as const, message: 'the event was edited: its content does not match its hash' } : undefined) ??
      (prevFlagged ? undefined : linkProblem(value, prevHash, prevLine, prevSelfConsistent));
    if (problem !== undefined) walk.problems.push({ line: problem.line ?? line, seq: problem.seq ?? value.seq, kind: problem.kind, message: problem.message });
    if (!seen.has(value.seq)) seen.set(value.seq, line);
    walk.events.push(value);
    walk.eventLines.push(line);
    expected = Math.max(expected, value.seq + 1);
    prevHash = value.hash;
    prevLine = line;
    prevSelfConsistent = selfConsistent;
    prevFlagged = problem !== undefined;
  }
  return walk;
}

/** Whether the event's content hashes to its hash; a payload too deep to hash never came from the store. */
function hashMatches(event: EventLine): boolean {
  try {
    return eventHash(event.prev, event) === event.hash;
  } catch (error) {
    if (error instanceof TooDeeplyNestedError) return false;
    throw error;
  }
}

type LocatedProblem = { readonly kind: RecordingProblemKind; readonly message: string; readonly line?: number; readonly seq?: number };

function sequenceProblem(seq: number, expected: number, line: number, seen: ReadonlyMap<number, number>, seqLines: ReadonlyMap<number, number>): LocatedProblem | undefined {
  if (seq === expected) return undefined;
  const earlier = seen.get(seq);
  if (earlier !== undefined) return { kind: 'inserted', message: `seq ${seq} appears twice (lines ${earlier} and ${line}): an event was inserted` };
  if (seq < expected) return { kind: 'out-of-order', message: `seq ${seq} comes after seq ${expected - 1}: events were reordered` };
  const laterLine = seqLines.get(expected);
  if (laterLine !== undefined && laterLine > line) return { kind: 'out-of-order', message: `seq ${seq} comes before seq ${expected} (line ${laterLine}): events were reordered` };
  const range = seq - 1 === expected ? `seq ${expected} is` : `seqs ${expected}–${seq - 1} are`;
  return { kind: 'missing', message: `${range} missing before this line: events were dropped` };
}

function linkProblem(event: EventLine, prevHash: string, prevLine: number, prevSelfConsistent: boolean): LocatedProblem | undefined {
  if (event.prev === prevHash) return undefined;
  // The line before hashes right on its own but not to what this one recorded: it was rewritten wholesale.
  if (prevSelfConsistent && prevLine > 1) return { kind: 'edited', line: prevLine, seq: event.seq - 1, message: `the event was rewritten with a recomputed hash: line ${prevLine + 1} links to a different one` };
  return { kind: 'broken-link', message: `the event does not link to line ${prevLine}: the chain was broken here` };
}

function compareWithCheckpoint(header: HeaderLine, walk: Walk, checkpoint: CheckpointPayload, located: boolean): RecordingProblem[] {
  const problems: RecordingProblem[] = [];
  const mismatch = (message: string, line?: number, seq?: number): void => {
    problems.push({ kind: 'checkpoint-mismatch', ...(line !== undefined ? { line } : {}), ...(seq !== undefined ? { seq } : {}), message });
  };
  if (checkpoint.session !== header.session || checkpoint.part !== header.part) {
    mismatch(`the checkpoint seals session ${checkpoint.session} part ${checkpoint.part}, not ${header.session} part ${header.part}: it was swapped in from another recording`);
    return problems;
  }
  if (checkpoint.headerHash !== header.hash) mismatch('the checkpoint was made for a different session header', 1);
  const events = walk.events;
  const beyond = events.map((event, index) => ({ event, line: walk.eventLines[index]! })).filter(({ event }) => event.seq > checkpoint.lastSeq);
  for (const { event, line } of beyond) problems.push({ kind: 'appended', line, seq: event.seq, message: `seq ${event.seq} is past the checkpoint's last seq ${checkpoint.lastSeq}: appended after sealing` });
  const lastSeq = events.reduce((max, event) => Math.max(max, event.seq), header.firstSeq - 1);
  if (lastSeq < checkpoint.lastSeq) {
    problems.push({ kind: 'truncated', seq: lastSeq + 1, message: `the checkpoint seals ${checkpoint.events} events up to seq ${checkpoint.lastSeq}, but the file stops at seq ${lastSeq}: the end was cut off` });
  }
  const sealedLast = events.filter((event) => event.seq <= checkpoint.lastSeq).at(-1);
  const lastHash = sealedLast?.hash ?? header.hash;
  if (!located && problems.length === 0 && (lastHash !== checkpoint.lastHash || events.length !== checkpoint.events)) {
    // Nothing located above yet the facts differ: the chain was rebuilt end to end with fresh hashes.
    mismatch(`the events do not end in the hash the checkpoint sealed (${events.length} events, checkpoint ${checkpoint.events}): the chain was rewritten`);
  }
  return problems;
}

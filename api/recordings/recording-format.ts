// The tamper-evident recording format, shared by the operator (which writes it), the CLI and
// anyone auditing a file: one JSON line per record. Line 1 is the session header, then one line per
// event chained by SHA-256 (each event's hash covers the previous hash and the event's canonical
// JSON, the first one links to the header's hash), and, once the session closes, a seal line
// holding the signed checkpoint (checkpoint.ts). docs/recordings.md describes it for outsiders.
import * as crypto from 'node:crypto';
import { canonicalJson, canonicalJsonWithOrder, isJsonObject, type JsonValue } from './canonical-json.js';

export const RECORDING_FORMAT_VERSION = 1;

/** How a session's recording ended: closed by the sidecar, or cut off (operator shutdown, crash recovery). */
export type SealStatus = 'sealed' | 'interrupted';

/** What a recording is about; the first line of every file. */
export interface RecordingHeader {
  readonly kind: 'header';
  readonly version: typeof RECORDING_FORMAT_VERSION;
  readonly session: string;
  /** The sidecar (namespace/pod) whose token proved it sent the events. */
  readonly node: string;
  readonly identity: string;
  readonly resource: string;
  readonly protocol: string;
  /** ISO time the session started, as the sidecar saw it. */
  readonly startedAt: string;
  /** 1 for the first file of a session; a session resumed after its file was sealed continues in part 2, 3, … */
  readonly part: number;
  /** The seq of the first event in this file (1 for part 1). */
  readonly firstSeq: number;
  /** The last hash of the previous part, linking the parts into one chain; absent for part 1. */
  readonly previousPartHash?: string;
}

/** One event as the sidecar reported it (already masked there). */
export interface RecordedEvent {
  /** 1-based, contiguous within a session. */
  readonly seq: number;
  /** ISO time of the event at the sidecar. */
  readonly at: string;
  /** connect | statement | complete | error | disconnect | gap | end (gap: events the sidecar had to drop). */
  readonly type: string;
  readonly payload: { readonly [key: string]: JsonValue };
}

export interface HeaderLine extends RecordingHeader {
  readonly hash: string;
}

export interface EventLine extends RecordedEvent {
  /** The hash this event links to: the previous event's, or the header's for the first. */
  readonly prev: string;
  readonly hash: string;
}

export interface SealLine {
  readonly kind: 'seal';
  readonly status: SealStatus;
  /** JWS compact serialization of the CheckpointPayload. */
  readonly checkpoint: string;
}

type OneShotHash = (algorithm: string, data: string, outputEncoding: 'hex') => string;
/** crypto.hash (Node 20.12 and later): one call, no Hash object per event; createHash before that. */
const oneShotHash = (crypto as unknown as { hash?: OneShotHash }).hash;

function sha256(text: string): string {
  return oneShotHash !== undefined ? oneShotHash('sha256', text, 'hex') : crypto.createHash('sha256').update(text, 'utf8').digest('hex');
}

export function headerHash(header: RecordingHeader): string {
  const { kind, version, session, node, identity, resource, protocol, startedAt, part, firstSeq, previousPartHash } = header;
  return sha256(canonicalJson({ kind, version, session, node, identity, resource, protocol, startedAt, part, firstSeq, previousPartHash }));
}

/**
 * The canonical JSON of an event's four fields: `{"at","payload","seq","type"}`, written around the
 * payload's own canonical text. `payloadJson` is that text, or undefined for an event whose payload
 * is absent (its key is then left out, as canonicalJson leaves out every undefined value).
 */
function eventCanonicalJson(event: RecordedEvent, payloadJson: string | undefined): string {
  // Only an event that skipped its type checks lacks one of these; canonicalJson leaves it out.
  if (event.seq === undefined || event.at === undefined || event.type === undefined) return canonicalJson({ seq: event.seq, at: event.at, type: event.type, payload: event.payload });
  const payload = payloadJson === undefined ? '' : `"payload":${payloadJson},`;
  return `{"at":${canonicalJson(event.at)},${payload}"seq":${canonicalJson(event.seq)},"type":${canonicalJson(event.type)}}`;
}

/** SHA-256 over the previous hash, a newline, and the canonical JSON of the event's four fields. */
export function eventHash(prev: string, event: RecordedEvent): string {
  return sha256(`${prev}\n${eventCanonicalJson(event, event.payload === undefined ? undefined : canonicalJson(event.payload))}`);
}

/** Builds the lines of one file in order; the writer's view of the chain. */
export class RecordingChain {
  private last: string;
  private nextSeq: number;
  private count = 0;
  private first: string | undefined;
  private latest: string | undefined;

  constructor(readonly header: HeaderLine, resumeFrom?: { readonly lastHash: string; readonly lastSeq: number; readonly count: number; readonly firstAt?: string; readonly lastAt?: string }) {
    this.last = resumeFrom?.lastHash ?? header.hash;
    this.nextSeq = (resumeFrom?.lastSeq ?? header.firstSeq - 1) + 1;
    this.count = resumeFrom?.count ?? 0;
    this.first = resumeFrom?.firstAt;
    this.latest = resumeFrom?.lastAt;
  }

  static start(header: RecordingHeader): RecordingChain {
    return new RecordingChain({ ...header, hash: headerHash(header) });
  }

  get expectedSeq(): number {
    return this.nextSeq;
  }

  get lastHash(): string {
    return this.last;
  }

  get events(): number {
    return this.count;
  }

  get firstAt(): string | undefined {
    return this.first;
  }

  get lastAt(): string | undefined {
    return this.latest;
  }

  /** The event's line; its seq must be the expected one (the caller checks and decides what a gap means). */
  append(event: RecordedEvent): EventLine {
    this.expect(event);
    const line: EventLine = { seq: event.seq, at: event.at, type: event.type, payload: event.payload, prev: this.last, hash: eventHash(this.last, event) };
    this.advance(line.hash, event.at);
    return line;
  }

  /**
   * toLine(append(event)), made with one walk of the payload where its keys are already in canonical
   * order (its canonical JSON is then also its JSON.stringify text) and without an EventLine object:
   * what the operator does for every event it stores.
   */
  appendLine(event: RecordedEvent): string {
    this.expect(event);
    const prev = this.last;
    const canonical = event.payload === undefined ? undefined : canonicalJsonWithOrder(event.payload);
    const hash = sha256(`${prev}\n${eventCanonicalJson(event, canonical?.text)}`);
    this.advance(hash, event.at);
    if (canonical === undefined || !canonical.sameAsStringify) return toLine({ seq: event.seq, at: event.at, type: event.type, payload: event.payload, prev, hash });
    // The key order of an EventLine object, as JSON.stringify writes it (the new hash is hex).
    return `{"seq":${JSON.stringify(event.seq)},"at":${JSON.stringify(event.at)},"type":${JSON.stringify(event.type)},"payload":${canonical.text},"prev":${JSON.stringify(prev)},"hash":"${hash}"}\n`;
  }

  private expect(event: RecordedEvent): void {
    if (event.seq !== this.nextSeq) throw new RangeError(`event seq ${event.seq} is not the expected ${this.nextSeq}`);
  }

  private advance(hash: string, at: string): void {
    this.last = hash;
    this.nextSeq += 1;
    this.count += 1;
    this.first ??= at;
    this.latest = at;
  }
}

function isString(value: unknown): value is string {
  return typeof value === 'string';
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** The header as parsed, or a sentence saying what is wrong with it. */
export function parseHeaderLine(value: unknown): HeaderLine | string {
  if (!isJsonObject(value) || value.kind !== 'header') return 'the first line is not a recording header (kind "header")';
  if (value.version !== RECORDING_FORMAT_VERSION) return `unsupported recording format version ${String(value.version)} (this build reads ${RECORDING_FORMAT_VERSION})`;
  const fields = ['session', 'node', 'identity', 'resource', 'protocol', 'startedAt', 'hash'] as const;
  const missing = fields.filter((field) => !isString(value[field]));
  if (missing.length > 0) return `the header lacks ${missing.join(', ')}`;
  if (!isCount(value.part) || value.part < 1 || !isCount(value.firstSeq) || value.firstSeq < 1) return 'the header has no valid part and firstSeq';
  if (value.previousPartHash !== undefined && !isString(value.previousPartHash)) return 'the header has an invalid previousPartHash';
  return value as unknown as HeaderLine;
}

export function isEventLine(value: unknown): value is EventLine {
  return (
    isJsonObject(value) && value.kind === undefined && isCount(value.seq) && isString(value.at) && isString(value.type) &&
    isJsonObject(value.payload) && isString(value.prev) && isString(value.hash)
  );
}

export function isSealLine(value: unknown): value is SealLine {
  return isJsonObject(value) && value.kind === 'seal' && (value.status === 'sealed' || value.status === 'interrupted') && isString(value.checkpoint);
}

/** A line as written: JSON and a newline. */
export function toLine(record: HeaderLine | EventLine | SealLine): string {
  return `${JSON.stringify(record)}\n`;
}

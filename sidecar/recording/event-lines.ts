// Session events as JSON lines, and the timestamps they carry, made cheaply: a recorded session
// writes two events per statement, and JSON.stringify of an object (property walk, toJSON lookups,
// number formatting) plus Date#toISOString cost more than everything else the sidecar does for a
// cached, allowed statement. The output is exactly what JSON.stringify would make of the event.
import type { SessionEvent } from './session-recorder.js';

/** Quote, backslash, control characters and surrogates (a lone one is escaped): the slow path. */
const NEEDS_ESCAPING = /[\u0000-\u001f"\\\ud800-\udfff]/;

/** Below this length a loop over the characters costs less than a call into the regular expression (for flat strings: timestamps, which are not, are longer). */
const SHORT_STRING = 16;

function needsEscaping(value: string): boolean {
  if (value.length >= SHORT_STRING) return NEEDS_ESCAPING.test(value);
  for (let index = 0; index < value.length; index += 1) {
    const code = value.charCodeAt(index);
    if (code < 0x20 || code === 0x22 || code === 0x5c || (code >= 0xd800 && code <= 0xdfff)) return true;
  }
  return false;
}

/** JSON for a string: as it is, quoted, when nothing in it needs escaping (the usual case). */
export function jsonString(value: string): string {
  return needsEscaping(value) ? JSON.stringify(value) : `"${value}"`;
}

/**
 * The latest timestamp a TimestampFormatter made. An event's `at` is, as a rule, that very string,
 * and an ISO timestamp never needs escaping: the comparison (of one object with itself) replaces a
 * scan of it, twice per statement.
 */
let latestTimestamp = '';

function atNeedsEscaping(at: string): boolean {
  return at !== latestTimestamp && needsEscaping(at);
}

/** jsonString of an event's timestamp. */
function atJson(at: string): string {
  return atNeedsEscaping(at) ? JSON.stringify(at) : `"${at}"`;
}

function jsonNumber(value: number): string {
  // A template rather than String(value): the same text, without a call to the String constructor.
  return Number.isFinite(value) ? `${value}` : 'null';
}

type StatementEvent = Extract<SessionEvent, { readonly type: 'statement' }>;

/** What follows a statement line's text (and parameters): its operation, decision and rule, and the closing braces. */
interface StatementTail {
  readonly operation: string;
  readonly decision: string;
  readonly rule: string | undefined;
  /** For eventLine. */
  readonly line: string;
  /** For spoolEventLine, whose payload object starts with these two fields (keys in canonical order)... */
  readonly spoolHead: string;
  /** ...and has the rule (when there is one) after the parameters and before the text. */
  readonly spoolRule: string;
}

// A session's statements come judged the same way again and again (same operation, decision and
// rule strings), so the tail of the last line is kept and reused when they match: a comparison of
// three strings, usually the same objects, instead of escaping and joining them for every line.
// Memos of a pure function, they hold no other state.
let lastTail: StatementTail | undefined;
let lastCommand = '';
let lastCommandJson = '""';

function statementTail(event: StatementEvent): StatementTail {
  const last = lastTail;
  if (last !== undefined && last.operation === event.operation && last.decision === event.decision && last.rule === event.rule) return last;
  const operation = jsonString(event.operation);
  const decision = jsonString(event.decision);
  const rule = event.rule === undefined ? '' : `,"rule":${jsonString(event.rule)}`;
  lastTail = {
    operation: event.operation, decision: event.decision, rule: event.rule,
    line: `,"operation":${operation},"decision":${decision}${rule}}`,
    spoolHead: `"decision":${decision},"operation":${operation}`,
    spoolRule: rule,
  };
  return lastTail;
}

/** jsonString of a command tag, the last one remembered ("SELECT 1" again and again). */
function commandJson(command: string): string {
  if (command !== lastCommand) {
    lastCommandJson = jsonString(command);
    lastCommand = command;
  }
  return lastCommandJson;
}

/** The event as one line of JSON, fields in the order JSON.stringify would write them. */
export function eventLine(event: SessionEvent): string {
  switch (event.type) {
    case 'statement': {
      const tail = statementTail(event);
      const head = `{"type":"statement","at":${atJson(event.at)},"text":${jsonString(event.text)}`;
      return event.parameters === undefined ? `${head}${tail.line}` : `${head},"parameters":${JSON.stringify(event.parameters)}${tail.line}`;
    }
    case 'complete':
      return `{"type":"complete","at":${atJson(event.at)},"command":${commandJson(event.command)},"rows":${jsonNumber(event.rows)},"durationMs":${jsonNumber(event.durationMs)}}`;
    default:
      // Once per session or per error: not worth a serializer of their own.
      return JSON.stringify(event);
  }
}

/** A spool and upload line: `{"seq","at","type","payload"}` as JSON.stringify would write it, no newline. */
export function spoolLine(seq: number, at: string, type: string, payload: object): string {
  return `{"seq":${jsonNumber(seq)},"at":${jsonString(at)},"type":${jsonString(type)},"payload":${JSON.stringify(payload)}}`;
}

/**
 * The event as its spool and upload line, the payload being the event's fields other than type and
 * at: what JSON.stringify({seq, at, type, payload}) makes, written by hand for the two events a
 * statement records, so the uploader neither copies the event into a payload object nor walks it.
 * Their payload keys come in canonical (sorted) order, the order the operator hashes them in: it
 * then writes the payload's canonical JSON into the stored line instead of serializing it twice.
 */
export function spoolEventLine(seq: number, event: SessionEvent): string {
  switch (event.type) {
    case 'statement': {
      const tail = statementTail(event);
      const parameters = event.parameters === undefined ? '' : `,"parameters":${JSON.stringify(event.parameters)}`;
      // Quotes written in place when neither string needs escaping: fewer pieces to join and flatten.
      return atNeedsEscaping(event.at) || needsEscaping(event.text)
        ? `{"seq":${jsonNumber(seq)},"at":${atJson(event.at)},"type":"statement","payload":{${tail.spoolHead}${parameters}${tail.spoolRule},"text":${jsonString(event.text)}}}`
        : `{"seq":${jsonNumber(seq)},"at":"${event.at}","type":"statement","payload":{${tail.spoolHead}${parameters}${tail.spoolRule},"text":"${event.text}"}}`;
    }
    case 'complete':
      return `{"seq":${jsonNumber(seq)},"at":${atJson(event.at)},"type":"complete","payload":{"command":${commandJson(event.command)},"durationMs":${jsonNumber(event.durationMs)},"rows":${jsonNumber(event.rows)}}}`;
    default: {
      const { type, at, ...payload } = event;
      return spoolLine(seq, at, type, payload);
    }
  }
}

const MINUTE_MS = 60_000;
/** "ss." and "mmmZ" for every second and millisecond of a minute. */
const SECOND_TEXTS = Array.from({ length: 60 }, (_, second) => `${String(second).padStart(2, '0')}.`);
const MILLISECOND_TEXTS = Array.from({ length: 1000 }, (_, millisecond) => `${String(millisecond).padStart(3, '0')}Z`);

/**
 * ISO timestamps (Date#toISOString) for a clock that moves forward: the date, hour and minute are
 * formatted once a minute and the seconds and milliseconds appended from tables (two joins, where
 * padding and number conversions made five and a rope that costs more to flatten when written).
 */
export class TimestampFormatter {
  private minuteStart = Number.NaN;
  private minutePrefix = '';
  private lastMs = Number.NaN;
  private last = '';

  format(ms: number): string {
    if (ms === this.lastMs) {
      latestTimestamp = this.last;
      return this.last;
    }
    const sinceMinute = ms - this.minuteStart;
    if (!(sinceMinute >= 0 && sinceMinute < MINUTE_MS) || sinceMinute !== Math.floor(sinceMinute)) {
      // Also taken when the clock goes back, and for dates toISOString writes with a six-digit year.
      const iso = new Date(ms).toISOString();
      this.minuteStart = ms - (ms % MINUTE_MS + MINUTE_MS) % MINUTE_MS;
      this.minutePrefix = iso.slice(0, iso.length - 'ss.mmmZ'.length);
      this.lastMs = ms;
      this.last = iso;
      latestTimestamp = iso;
      return iso;
    }
    // Small integers from here on (int32 arithmetic, and table indexes V8 need not convert).
    const since = sinceMinute | 0;
    const seconds = (since / 1000) | 0;
    const millis = since - seconds * 1000;
    this.lastMs = ms;
    this.last = `${this.minutePrefix}${SECOND_TEXTS[seconds]!}${MILLISECOND_TEXTS[millis]!}`;
    latestTimestamp = this.last;
    return this.last;
  }
}

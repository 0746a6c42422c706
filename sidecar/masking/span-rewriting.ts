// Turns detector hits into an output text: overlapping spans merge (the strongest strategy wins),
// and each span is replaced in one left-to-right pass. In JSON a span outside any string (a bare
// number such as a card stored as a JSON number) becomes a JSON string, so the document still parses.
import type { DetectorName } from './detector-types.js';
import { isStronger, type MaskingStrategy } from './strategies.js';

export interface MaskSpan {
  readonly start: number;
  readonly end: number;
  /** The detector whose strategy applies (the strongest, when spans of several detectors merged). */
  readonly detector: DetectorName;
  readonly strategy: MaskingStrategy;
}

/** Sorts spans by start and merges overlapping ones, keeping the strongest strategy's detector. */
export function mergeSpans(spans: MaskSpan[]): MaskSpan[] {
  if (spans.length < 2) return spans;
  spans.sort((a, b) => a.start - b.start || b.end - a.end);
  const merged: MaskSpan[] = [];
  for (const span of spans) {
    const last = merged[merged.length - 1];
    if (last === undefined || span.start >= last.end) {
      merged.push(span);
      continue;
    }
    const stronger = isStronger(span.strategy, last.strategy) ? span : last;
    merged[merged.length - 1] = {
      start: last.start,
      end: Math.max(last.end, span.end),
      detector: stronger.detector,
      strategy: stronger.strategy,
    };
  }
  return merged;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Whether a position of a JSON text is inside a string, advanced incrementally (one pass overall). */
class JsonStringTracker {
  private position = 0;
  private escaped = false;
  inString = false;

  advanceTo(text: string, target: number): void {
    for (; this.position < target; this.position++) {
      const code = text.charCodeAt(this.position);
      if (!this.inString) {
        if (code === QUOTE) this.inString = true;
      } else if (this.escaped) {
        this.escaped = false;
      } else if (code === BACKSLASH) {
        this.escaped = true;
      } else if (code === QUOTE) {
        this.inString = false;
      }
    }
  }
}

/**
 * `text` with every span replaced by `replacement(span)`. With `json`, returns undefined when the
 * result would not be valid JSON (a span crossing string boundaries); the caller then masks the
 * whole value, which is always safe.
 */
export function rewriteSpans(
  text: string,
  spans: readonly MaskSpan[],
  replacement: (span: MaskSpan) => string,
  json: boolean,
): string | undefined {
  const tracker = json ? new JsonStringTracker() : undefined;
  let output = '';
  let cursor = 0;
  for (const span of spans) {
    let replaced = replacement(span);
    if (tracker !== undefined) {
      tracker.advanceTo(text, span.start);
      const quoted = !tracker.inString;
      tracker.advanceTo(text, span.end);
      if (tracker.inString === quoted) return undefined; // the span ends in a different string state
      if (quoted) replaced = JSON.stringify(replaced);
    }
    output += text.slice(cursor, span.start) + replaced;
    cursor = span.end;
  }
  output += text.slice(cursor);
  return json && !parsesAsJson(output) ? undefined : output;
}

function parsesAsJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

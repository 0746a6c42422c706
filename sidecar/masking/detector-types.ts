// The shape every value detector shares: it scans a string and reports the [start, end) spans it
// recognises, so only the sensitive part of a longer text is masked.
import type { DETECTORS } from '../../api/kinds/kinds.js';

export type DetectorName = (typeof DETECTORS)[number];

/** Receives one recognised span. Spans may arrive in any order and overlap; consumers sort and merge. */
export type SpanSink = (start: number, end: number) => void;

/** Scans `text` once, in time linear in its length, reporting each recognised span. */
export type FindSpans = (text: string, emit: SpanSink) => void;

export interface DetectedSpan {
  readonly start: number;
  readonly end: number;
  readonly detector: DetectorName;
}

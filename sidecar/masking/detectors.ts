// The value detectors masking rules name (`detectors: [credit-card, …]`): each finds the sensitive
// spans inside a longer text (a card number in a sentence, a token in a JSON blob) so that only
// those spans are masked. All of them are hand-written linear scans or literal searches: no regex
// that can backtrack, no per-cell allocation unless something is found.
import { DETECTORS } from '../../api/kinds/vocabulary.js';
import { findCardNumbers } from './card-detector.js';
import { findCloudAccessKeys } from './cloud-key-detector.js';
import type { DetectedSpan, DetectorName, FindSpans } from './detector-types.js';
import { findEmails } from './email-detector.js';
import { findIbans } from './iban-detector.js';
import { findJwts } from './jwt-detector.js';
import { findPrivateKeys } from './private-key-detector.js';
import { findSsns } from './ssn-detector.js';

export type { DetectedSpan, DetectorName } from './detector-types.js';

export const DETECTOR_FINDERS: Readonly<Record<DetectorName, FindSpans>> = {
  'credit-card': findCardNumbers,
  email: findEmails,
  iban: findIbans,
  'us-ssn': findSsns,
  jwt: findJwts,
  'cloud-access-key': findCloudAccessKeys,
  'private-key': findPrivateKeys,
};

export function isDetectorName(value: string): value is DetectorName {
  return (DETECTORS as readonly string[]).includes(value);
}

/**
 * Every span the given detectors find in `text`, ordered by start (then longest first). Spans of
 * different detectors may overlap; the caller decides how to merge them.
 */
export function detectSpans(text: string, detectors: readonly DetectorName[]): DetectedSpan[] {
  const spans: DetectedSpan[] = [];
  for (const detector of detectors) {
    DETECTOR_FINDERS[detector](text, (start, end) => spans.push({ start, end, detector }));
  }
  if (spans.length > 1) spans.sort((a, b) => a.start - b.start || b.end - a.end);
  return spans;
}

function isSpace(code: number): boolean {
  return code === 0x20 || code === 0x09 || code === 0x0a || code === 0x0d;
}

/**
 * The detector that recognises the whole of `text` (ignoring surrounding whitespace), if any: used
 * to pick a kind-specific partial format or hash canonical form for a value masked by column name.
 */
export function recogniseWholeValue(text: string): DetectorName | undefined {
  let start = 0;
  let end = text.length;
  while (start < end && isSpace(text.charCodeAt(start))) start++;
  while (end > start && isSpace(text.charCodeAt(end - 1))) end--;
  if (start === end) return undefined;
  const trimmed = start === 0 && end === text.length ? text : text.slice(start, end);
  return detectSpans(trimmed, DETECTORS).find((span) => span.start === 0 && span.end === trimmed.length)?.detector;
}

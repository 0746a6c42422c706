// Finds cloud and SaaS credentials by their documented formats: AWS access key ids (AKIA/ASIA) and
// secret keys next to their well-known name, Google API keys (AIza) and service-account
// private_key_id values, Azure storage/Service Bus account keys, GitHub tokens and Slack tokens.
// One literal trigger search finds candidates; each trigger then checks the exact format.
import { codeAt, isAlnum, isBase64, isBase64Url, isDigit, isLowerHex, isUpper, skipWhile } from './ascii-classes.js';
import type { SpanSink } from './detector-types.js';

/**
 * A literal alternation: no quantifiers, so the regex engine cannot backtrack. Shared (building a
 * RegExp per cell dominated the cost); safe because the scan below is synchronous and starts by
 * resetting lastIndex.
 */
const TRIGGERS =
  /AKIA|ASIA|AIza|AccountKey=|SharedAccessKey=|gh[pousr]_|github_pat_|xox[abprs]-|private_key_id|aws_secret_access_key|AWS_SECRET_ACCESS_KEY/g;

/** Where a credential ends (exclusive) and where its secret part starts; end -1 means no match. */
interface KeyMatch {
  readonly start: number;
  readonly end: number;
}

const NO_MATCH: KeyMatch = { start: -1, end: -1 };

function isUpperOrDigit(code: number): boolean {
  return isUpper(code) || isDigit(code);
}

function isAwsSecretCharacter(code: number): boolean {
  return isAlnum(code) || code === 0x2b /* + */ || code === 0x2f /* / */;
}

/** Exactly `length` characters of `accept` from `from`, not continued by another such character. */
function fixedRunEnd(text: string, from: number, length: number, accept: (code: number) => boolean): number {
  const end = skipWhile(text, from, accept, length + 1);
  return end - from === length ? end : -1;
}

/** Start of the value in `key: "value"`, `key = value` or `"key":"value"`, or -1. */
function valueStartAfterKey(text: string, from: number): number {
  let index = from;
  let sawAssignment = false;
  for (const stop = from + 8; index < stop; index++) {
    const code = codeAt(text, index);
    if (code === 0x3a /* : */ || code === 0x3d /* = */) sawAssignment = true;
    else if (code !== 0x20 && code !== 0x09 && code !== 0x22 /* " */ && code !== 0x27 /* ' */) break;
  }
  return sawAssignment ? index : -1;
}

/** A token with a fixed prefix and a body of at least `minimum` characters of `accept`. */
function prefixedToken(text: string, start: number, prefixLength: number, minimum: number, accept: (code: number) => boolean): KeyMatch {
  if (isAlnum(codeAt(text, start - 1))) return NO_MATCH;
  const end = skipWhile(text, start + prefixLength, accept);
  return end - start - prefixLength >= minimum ? { start, end } : NO_MATCH;
}

function awsAccessKeyId(text: string, start: number): KeyMatch {
  if (isAlnum(codeAt(text, start - 1))) return NO_MATCH;
  const end = fixedRunEnd(text, start + 4, 16, isUpperOrDigit);
  return end > 0 && !isAlnum(codeAt(text, end)) ? { start, end } : NO_MATCH;
}

function googleApiKey(text: string, start: number): KeyMatch {
  if (isBase64Url(codeAt(text, start - 1))) return NO_MATCH;
  const end = fixedRunEnd(text, start + 4, 35, isBase64Url);
  return end > 0 ? { start, end } : NO_MATCH;
}

/** Azure connection strings: `AccountKey=<base64>;` — only the key itself is masked. */
function azureAccountKey(text: string, valueStart: number): KeyMatch {
  const end = skipWhile(text, valueStart, isBase64);
  return end - valueStart >= 20 ? { start: valueStart, end } : NO_MATCH;
}

function serviceAccountKeyId(text: string, keyEnd: number): KeyMatch {
  const start = valueStartAfterKey(text, keyEnd);
  if (start < 0) return NO_MATCH;
  const end = fixedRunEnd(text, start, 40, isLowerHex);
  return end > 0 && !isAlnum(codeAt(text, end)) ? { start, end } : NO_MATCH;
}

function awsSecretAccessKey(text: string, keyEnd: number): KeyMatch {
  const start = valueStartAfterKey(text, keyEnd);
  if (start < 0) return NO_MATCH;
  const end = fixedRunEnd(text, start, 40, isAwsSecretCharacter);
  return end > 0 && codeAt(text, end) !== 0x3d /* = */ ? { start, end } : NO_MATCH;
}

function isGithubPatCharacter(code: number): boolean {
  return isAlnum(code) || code === 0x5f /* _ */;
}

function isSlackCharacter(code: number): boolean {
  return isAlnum(code) || code === 0x2d /* - */;
}

function matchTrigger(text: string, trigger: string, start: number): KeyMatch {
  const triggerEnd = start + trigger.length;
  switch (trigger) {
    case 'AKIA':
    case 'ASIA':
      return awsAccessKeyId(text, start);
    case 'AIza':
      return googleApiKey(text, start);
    case 'AccountKey=':
    case 'SharedAccessKey=':
      return azureAccountKey(text, triggerEnd);
    case 'github_pat_':
      return prefixedToken(text, start, trigger.length, 50, isGithubPatCharacter);
    case 'private_key_id':
      return serviceAccountKeyId(text, triggerEnd);
    case 'aws_secret_access_key':
    case 'AWS_SECRET_ACCESS_KEY':
      return awsSecretAccessKey(text, triggerEnd);
    default:
      // gh?_ tokens carry 36 base62 characters; xox?- Slack tokens are dash-joined numbers and a secret.
      return trigger.startsWith('gh')
        ? prefixedToken(text, start, trigger.length, 30, isAlnum)
        : prefixedToken(text, start, trigger.length, 10, isSlackCharacter);
  }
}

export function findCloudAccessKeys(text: string, emit: SpanSink): void {
  const triggers = TRIGGERS;
  triggers.lastIndex = 0;
  let lastEnd = 0;
  for (let found = triggers.exec(text); found !== null; found = triggers.exec(text)) {
    const match = matchTrigger(text, found[0], found.index);
    if (match.end < 0 || match.start < lastEnd) continue;
    emit(match.start, match.end);
    lastEnd = match.end;
    triggers.lastIndex = Math.max(triggers.lastIndex, match.end);
  }
}

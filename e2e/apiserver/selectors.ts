// Label and field selectors as the real API server parses them: `a=b`, `a==b`, `a!=b`, `a in (x,y)`,
// `a notin (x)`, `a`, `!a` for labels; `=`, `==`, `!=` on a few supported fields for fields.
import { badRequest } from './api-status.js';
import { readPath, type KubeObject } from './objects.js';

type Requirement =
  | { op: 'eq' | 'neq'; key: string; value: string }
  | { op: 'in' | 'notin'; key: string; values: string[] }
  | { op: 'exists' | 'notexists'; key: string };

export type Selector = (object: KubeObject) => boolean;

/** Splits on commas that are not inside parentheses. */
function splitTerms(selector: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let current = '';
  for (const char of selector) {
    if (char === '(') depth += 1;
    if (char === ')') depth -= 1;
    if (char === ',' && depth === 0) {
      terms.push(current.trim());
      current = '';
    } else current += char;
  }
  if (current.trim() !== '') terms.push(current.trim());
  return terms;
}

function parseLabelTerm(term: string): Requirement {
  const setMatch = /^([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(term);
  if (setMatch !== null) {
    return { op: setMatch[2] as 'in' | 'notin', key: setMatch[1], values: setMatch[3].split(',').map((value) => value.trim()).filter((value) => value !== '') };
  }
  const equality = /^([^\s!=]+)\s*(==|=|!=)\s*([^\s]*)$/.exec(term);
  if (equality !== null) return { op: equality[2] === '!=' ? 'neq' : 'eq', key: equality[1], value: equality[3] };
  if (/^![^\s!=()]+$/.test(term)) return { op: 'notexists', key: term.slice(1) };
  if (/^[^\s!=()]+$/.test(term)) return { op: 'exists', key: term };
  throw badRequest(`unable to parse requirement: ${JSON.stringify(term)}`);
}

function matches(requirement: Requirement, values: Record<string, string | undefined>): boolean {
  const value = values[requirement.key];
  switch (requirement.op) {
    case 'eq': return value === requirement.value;
    case 'neq': return value !== requirement.value;
    case 'in': return value !== undefined && requirement.values.includes(value);
    case 'notin': return value === undefined || !requirement.values.includes(value);
    case 'exists': return value !== undefined;
    case 'notexists': return value === undefined;
  }
}

export function parseLabelSelector(selector: string | null | undefined): Selector {
  if (selector === null || selector === undefined || selector.trim() === '') return () => true;
  const requirements = splitTerms(selector).map(parseLabelTerm);
  return (object) => requirements.every((requirement) => matches(requirement, object.metadata.labels ?? {}));
}

/** Fields every type supports, plus the per-type ones the real server indexes that tests use. */
const SUPPORTED_FIELDS = new Set(['metadata.name', 'metadata.namespace', 'spec.nodeName', 'status.phase', 'spec.serviceAccountName', 'type', 'involvedObject.name', 'involvedObject.uid', 'involvedObject.kind', 'involvedObject.namespace', 'reason']);

export function parseFieldSelector(selector: string | null | undefined): Selector {
  if (selector === null || selector === undefined || selector.trim() === '') return () => true;
  const requirements = splitTerms(selector).map((term) => {
    const match = /^([^\s!=]+)\s*(==|=|!=)\s*(.*)$/.exec(term);
    if (match === null) throw badRequest(`invalid field selector: ${JSON.stringify(term)}`);
    if (!SUPPORTED_FIELDS.has(match[1])) throw badRequest(`field label not supported: ${match[1]}`);
    return { key: match[1], negate: match[2] === '!=', value: match[3].trim() };
  });
  return (object) => requirements.every((requirement) => {
    const raw = readPath(object, requirement.key);
    const value = raw === undefined || raw === null ? '' : String(raw);
    return requirement.negate ? value !== requirement.value : value === requirement.value;
  });
}

/** A labelSelector object (matchLabels, matchExpressions) as webhooks' namespace/objectSelector carry it. */
export function matchesLabelSelectorObject(selector: unknown, labels: Record<string, string>): boolean {
  if (typeof selector !== 'object' || selector === null) return true;
  const { matchLabels, matchExpressions } = selector as { matchLabels?: Record<string, string>; matchExpressions?: Array<{ key: string; operator: string; values?: string[] }> };
  for (const [key, value] of Object.entries(matchLabels ?? {})) if (labels[key] !== value) return false;
  for (const expression of matchExpressions ?? []) {
    const value = labels[expression.key];
    const values = expression.values ?? [];
    const ok = expression.operator === 'In' ? value !== undefined && values.includes(value)
      : expression.operator === 'NotIn' ? value === undefined || !values.includes(value)
        : expression.operator === 'Exists' ? value !== undefined
          : expression.operator === 'DoesNotExist' ? value === undefined : false;
    if (!ok) return false;
  }
  return true;
}

// Server-side printing: when a client asks for `as=Table` (kubectl get does), lists, single objects and
// watch events are answered as meta.k8s.io/v1 Tables. CRDs get their additionalPrinterColumns (JSONPath
// subset: .field, [n], [*], [?(@.field=="value")]); built-ins get Name and Age only.
import { isJsonObject, type KubeObject } from './objects.js';
import type { PrinterColumn, ResourceType } from './resource-types.js';

const NAME_COLUMN: PrinterColumn = { name: 'Name', type: 'string', format: 'name', description: 'Name must be unique within a namespace.', jsonPath: '.metadata.name', priority: 0 };
const AGE_COLUMN: PrinterColumn = { name: 'Age', type: 'date', description: 'Time since creation.', jsonPath: '.metadata.creationTimestamp', priority: 0 };

/** True when the Accept header asks for a Table first, as kubectl get does. */
export function wantsTable(accept: string | undefined): boolean {
  return (accept ?? '').split(',')[0]?.includes('as=Table') ?? false;
}

function columnsOf(type: ResourceType, version: string): PrinterColumn[] {
  const custom = type.printerColumns?.get(version);
  if (custom === undefined || custom.length === 0) return [NAME_COLUMN, AGE_COLUMN];
  return [NAME_COLUMN, ...custom];
}

type PathStep = { kind: 'field'; name: string } | { kind: 'index'; index: number } | { kind: 'all' } | { kind: 'filter'; field: string; value: string };

function parsePath(path: string): PathStep[] {
  const steps: PathStep[] = [];
  const pattern = /\.([A-Za-z0-9_-]+)|\[\*\]|\[(\d+)\]|\[\?\(@\.([A-Za-z0-9_.-]+)\s*==\s*["']([^"']*)["']\)\]/g;
  for (const match of path.replace(/^\{|\}$/g, '').matchAll(pattern)) {
    if (match[1] !== undefined) steps.push({ kind: 'field', name: match[1] });
    else if (match[2] !== undefined) steps.push({ kind: 'index', index: Number(match[2]) });
    else if (match[3] !== undefined) steps.push({ kind: 'filter', field: match[3], value: match[4] });
    else steps.push({ kind: 'all' });
  }
  return steps;
}

function evaluate(path: string, object: unknown): unknown[] {
  let values: unknown[] = [object];
  for (const step of parsePath(path)) {
    const next: unknown[] = [];
    for (const value of values) {
      if (step.kind === 'field' && isJsonObject(value) && value[step.name] !== undefined) next.push(value[step.name]);
      if (step.kind === 'index' && Array.isArray(value) && value[step.index] !== undefined) next.push(value[step.index]);
      if (step.kind === 'all' && Array.isArray(value)) next.push(...value);
      if (step.kind === 'filter' && Array.isArray(value)) {
        next.push(...value.filter((item) => isJsonObject(item) && String(step.field.split('.').reduce<unknown>((at, key) => (isJsonObject(at) ? at[key] : undefined), item)) === step.value));
      }
    }
    values = next;
  }
  return values;
}

/** k8s.io/apimachinery duration.HumanDuration: what the real server prints for date columns ("5m", "3h2m"). */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
  if (hours < 48) return `${hours}h`;
  const days = Math.floor(hours / 24);
  if (hours < 24 * 8) return hours % 24 === 0 ? `${days}d` : `${days}d${hours % 24}h`;
  if (days < 365 * 2) return `${days}d`;
  const years = Math.floor(days / 365);
  if (days < 365 * 8) return days % 365 === 0 ? `${years}y` : `${years}y${days % 365}d`;
  return `${years}y`;
}

function cell(column: PrinterColumn, object: KubeObject): unknown {
  const values = evaluate(column.jsonPath, object);
  if (values.length === 0) return null;
  if (column.type === 'date' && typeof values[0] === 'string') return humanDuration(Date.now() - Date.parse(values[0]));
  if (values.length > 1) return values.map((value) => (typeof value === 'string' ? value : JSON.stringify(value))).join(',');
  const [value] = values;
  return isJsonObject(value) || Array.isArray(value) ? JSON.stringify(value) : value;
}

function row(columns: PrinterColumn[], object: KubeObject): Record<string, unknown> {
  return {
    cells: columns.map((column) => cell(column, object)),
    object: { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: object.metadata },
  };
}

export function toTable(type: ResourceType, version: string, objects: KubeObject[], listMetadata: Record<string, unknown> = {}, withColumns = true): Record<string, unknown> {
  const columns = columnsOf(type, version);
  return {
    kind: 'Table', apiVersion: 'meta.k8s.io/v1', metadata: listMetadata,
    ...(withColumns ? { columnDefinitions: columns.map(({ jsonPath: _jsonPath, ...definition }) => ({ format: '', description: '', priority: 0, ...definition })) } : {}),
    rows: objects.map((object) => row(columns, object)),
  };
}

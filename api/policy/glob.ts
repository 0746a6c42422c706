// Globs in policies: table globs (`orders`, `public.*`, `*.card_*`), HTTP path globs
// (`/v1/invoices/**`) and the grammar of masking column globs (`email`, `customers.card_*`).
// Compiled once per policy; a bad glob is a GatehouseError the validator reports.
import picomatch from 'picomatch';
import { GatehouseError } from '../errors.js';
import type { QualifiedName } from '../sql/operations.js';

/** Schema an unqualified table is taken to live in (PostgreSQL's default search_path). */
export const DEFAULT_SCHEMA = 'public';

export type NameMatcher = (name: string) => boolean;

/** One dot-separated part of a table or column glob. */
const GLOB_PART = /^[A-Za-z0-9_$*?-]+$/;

function tablePartMatcher(part: string): NameMatcher {
  if (part === '*') return () => true;
  const source = part.replace(/[$-]/g, (char) => `\\${char}`).replace(/\*/g, '.*').replace(/\?/g, '.');
  const regex = new RegExp(`^${source}$`);
  return (name) => regex.test(name);
}

/**
 * A table glob: `name` matches a table of that name in any schema; `schema.name` matches the
 * schema-qualified table, unqualified tables counting as schema `public`. `*` and `?` are wildcards.
 */
export function compileTableGlob(glob: string): (relation: QualifiedName) => boolean {
  const parts = glob.split('.');
  if (parts.length > 2 || parts.some((part) => !GLOB_PART.test(part))) {
    throw new GatehouseError('GH_ERR_BAD_GLOB', {
      glob: JSON.stringify(glob),
      detail: 'a table glob is `table` or `schema.table` made of letters, digits, _, $, - and the wildcards * and ?',
    });
  }
  if (parts.length === 1) {
    const matchName = tablePartMatcher(parts[0]!);
    return (relation) => matchName(relation.name);
  }
  const matchSchema = tablePartMatcher(parts[0]!);
  const matchName = tablePartMatcher(parts[1]!);
  return (relation) => matchSchema(relation.schema ?? DEFAULT_SCHEMA) && matchName(relation.name);
}

/** A masking column glob split into its parts; how a part matches is the masker's (sidecar/masking/column-matcher.ts). */
export interface ColumnGlob {
  readonly table?: string;
  readonly column: string;
}

/** `column` or `table.column`, each part letters, digits, _, $, - and the wildcards * and ?. */
export function parseColumnGlob(glob: string): ColumnGlob {
  const parts = glob.split('.');
  if (parts.length > 2 || parts.some((part) => !GLOB_PART.test(part))) {
    throw new GatehouseError('GH_ERR_BAD_GLOB', {
      glob: JSON.stringify(glob),
      detail: 'a column glob is `column` or `table.column` made of letters, digits, _, $, - and the wildcards * and ?',
    });
  }
  return parts.length === 2 ? { table: parts[0]!, column: parts[1]! } : { column: parts[0]! };
}

/** An HTTP path glob: `*` is one path segment, `**` any number of them. */
export function compilePathGlob(glob: string): NameMatcher {
  const balanced = (open: string, close: string) => glob.split(open).length === glob.split(close).length;
  if (!glob.startsWith('/') || /\s/.test(glob) || !balanced('[', ']') || !balanced('{', '}')) {
    throw new GatehouseError('GH_ERR_BAD_GLOB', {
      glob: JSON.stringify(glob),
      detail: 'a path glob starts with / and has no spaces or unbalanced brackets',
    });
  }
  return picomatch(glob, { dot: true });
}

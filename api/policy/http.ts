// How an HTTP request becomes a policy action: the method picks the operation (GET/HEAD/OPTIONS
// read, POST/PUT/PATCH write, DELETE delete) and the path is normalised the way the upstream server
// will see it, so `/v1/../admin` or `/v1/%61dmin` cannot slip past a path rule.
import type { SqlOperation } from '../sql/operations.js';

const METHOD_OPERATIONS: ReadonlyMap<string, SqlOperation> = new Map<string, SqlOperation>([
  ['GET', 'read'],
  ['HEAD', 'read'],
  ['OPTIONS', 'read'],
  ['POST', 'write'],
  ['PUT', 'write'],
  ['PATCH', 'write'],
  ['DELETE', 'delete'],
]);

/** The operation an HTTP method performs; undefined for methods Gatehouse does not classify (denied). */
export function httpOperation(method: string): SqlOperation | undefined {
  return METHOD_OPERATIONS.get(method.toUpperCase());
}

// RFC 3986 §6.2.2.2: percent-encoded unreserved characters mean the same as the characters themselves.
const UNRESERVED = /^[A-Za-z0-9\-._~]$/;
const NORMALISE_BASE = 'http://gatehouse.invalid';

function decodeUnreserved(path: string): string {
  return path.replace(/%([0-9A-Fa-f]{2})/g, (escape, hex: string) => {
    const char = String.fromCharCode(parseInt(hex, 16));
    return UNRESERVED.test(char) ? char : escape.toUpperCase();
  });
}

/**
 * The path a policy rule is matched against: query and fragment dropped, unreserved escapes
 * decoded, repeated slashes merged, `.` and `..` segments resolved. Accepts origin-form (`/a/b`)
 * and absolute-form (`https://host/a/b`) targets; undefined for anything else (`*`, `a/b`).
 */
export function normalizeHttpPath(target: string): string | undefined {
  const beforeQuery = target.split(/[?#]/, 1)[0] ?? '';
  const absolute = /^https?:\/\//i.test(beforeQuery);
  if (!absolute && !beforeQuery.startsWith('/')) return undefined;
  // Merged slashes keep `//host/x` a path, not a protocol-relative URL with its own host.
  const path = absolute ? beforeQuery : beforeQuery.replace(/\/{2,}/g, '/');
  try {
    return new URL(decodeUnreserved(path), NORMALISE_BASE).pathname;
  } catch {
    return undefined;
  }
}

// Which of the client's startup parameters reach the server. The sidecar, not the app, decides who
// logs in and to which database; settings that could change how the server reads statements
// (client_encoding other than UTF8, search_path, options=-c ...) never pass, so the policy judges
// exactly what the server runs.
import { GatehouseError } from '../../../api/errors.js';

/** Settings that only shape output or timing, safe to let the app choose. */
const PASSED_THROUGH = new Set([
  'application_name',
  'datestyle',
  'intervalstyle',
  'timezone',
  'extra_float_digits',
  'statement_timeout',
  'lock_timeout',
  'idle_in_transaction_session_timeout',
  'bytea_output',
]);

/** Parameters the sidecar sets itself or that identify the login: dropped without complaint. */
const OWNED_BY_SIDECAR = new Set(['user', 'database', 'password', 'replication']);

export interface FilteredStartup {
  /** Parameters to forward upstream (keys as the client spelled them). */
  readonly forward: Map<string, string>;
  /** Names dropped, for the session log. */
  readonly dropped: string[];
}

function isUtf8(value: string): boolean {
  return /^(utf-?8|unicode)$/i.test(value.trim().replace(/^'|'$/g, ''));
}

export function filterStartupParameters(parameters: ReadonlyMap<string, string>): FilteredStartup {
  const forward = new Map<string, string>();
  const dropped: string[] = [];
  for (const [name, value] of parameters) {
    const key = name.toLowerCase();
    if (key === 'client_encoding') {
      // A non-UTF8 client encoding lets a multibyte character hide a quote from the parser we use.
      if (!isUtf8(value)) throw new GatehouseError('GH_ERR_PG_CLIENT_ENCODING', { encoding: value });
      forward.set('client_encoding', 'UTF8');
    } else if (PASSED_THROUGH.has(key)) {
      forward.set(name, value);
    } else if (!OWNED_BY_SIDECAR.has(key)) {
      dropped.push(name);
    }
  }
  forward.set('client_encoding', 'UTF8');
  return { forward, dropped };
}

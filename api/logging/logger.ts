// JSON logs with pino for every Gatehouse process. Secrets never reach a log line: credential-shaped
// fields are redacted wherever they appear, and callers log identities and resources, not values.
import pino, { type Logger, type DestinationStream } from 'pino';

export type { Logger } from 'pino';

/** Field names whose values are removed from every log line, at the top level and one level down. */
const SECRET_FIELDS = ['password', 'passwd', 'secret', 'token', 'credential', 'credentials', 'authorization', 'privateKey', 'apiKey', 'params'];

export const REDACT_PATHS = SECRET_FIELDS.flatMap((field) => [field, `*.${field}`]);

export interface LoggerOptions {
  readonly level?: string;
  readonly name?: string;
  /** Where lines go; stdout when absent. Tests pass a stream to inspect the output. */
  readonly destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      name: options.name ?? 'gatehouse',
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination,
  );
}

/** A logger that discards everything, for tests and benchmarks that don't look at logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

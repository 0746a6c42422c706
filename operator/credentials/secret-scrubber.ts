// Removes secret values from text that came from elsewhere (a database error message, a driver
// error) before it goes into a GatehouseError or a log line. Used where a third party's message may
// echo what we sent it.

export const REDACTED = '[REDACTED]';

/** Longest upstream detail kept in a message: enough to act on, too short to carry a dump. */
const MAX_DETAIL_LENGTH = 300;

/** `text` with every occurrence of each secret replaced, truncated to a readable length. */
export function scrubSecrets(text: string, secrets: readonly (string | undefined)[]): string {
  let scrubbed = text;
  for (const secret of secrets) {
    if (secret === undefined || secret === '') continue;
    scrubbed = scrubbed.split(secret).join(REDACTED);
  }
  return scrubbed.length > MAX_DETAIL_LENGTH ? `${scrubbed.slice(0, MAX_DETAIL_LENGTH)}…` : scrubbed;
}

/** The message of an unknown thrown value, scrubbed. */
export function scrubbedMessage(error: unknown, secrets: readonly (string | undefined)[]): string {
  const message = error instanceof Error ? error.message : String(error);
  return scrubSecrets(message, secrets);
}

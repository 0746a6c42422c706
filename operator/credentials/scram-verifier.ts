// Turns a password into the SCRAM-SHA-256 verifier PostgreSQL stores (RFC 5802/7677, the format of
// pg_authid.rolpassword). Sending the verifier instead of the password in CREATE ROLE means the
// password itself never reaches the server, so it cannot leak through log_statement or pg_stat_statements.
import { createHash, createHmac, pbkdf2, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const pbkdf2Async = promisify(pbkdf2);

/** PostgreSQL's default (scram_iterations). */
export const SCRAM_ITERATIONS = 4096;

/**
 * `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`. The password must already be
 * SASLprep-normalised; the generated passwords are printable ASCII, for which SASLprep is the identity.
 */
export async function scramSha256Verifier(password: string, salt: Buffer = randomBytes(16), iterations = SCRAM_ITERATIONS): Promise<string> {
  const salted = await pbkdf2Async(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

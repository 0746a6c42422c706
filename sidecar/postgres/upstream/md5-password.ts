// The answer to AuthenticationMD5Password: "md5" + md5(md5(password + user) + salt), in hex.
import { createHash } from 'node:crypto';

/**
 * The inner hash md5(password + user) is what pg_authid stores: whoever holds it can log in with
 * md5 auth, so it is as secret as the password (and is scrubbed from errors alongside it).
 */
export function md5PasswordHash(user: string, password: string): string {
  return createHash('md5').update(password, 'utf8').update(user, 'utf8').digest('hex');
}

export function md5PasswordResponse(user: string, password: string, salt: Buffer): string {
  return `md5${createHash('md5').update(md5PasswordHash(user, password)).update(salt).digest('hex')}`;
}

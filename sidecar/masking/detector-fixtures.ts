// Builders for realistic sensitive values, shared by the masking tests (never used in production):
// Luhn check digits, IBAN check digits, signed-looking JWTs.
import { createHmac } from 'node:crypto';

/** `body` followed by the Luhn check digit that makes it valid. */
export function withLuhnDigit(body: string): string {
  for (let check = 0; check <= 9; check++) {
    const candidate = `${body}${check}`;
    let sum = 0;
    for (let index = 0; index < candidate.length; index++) {
      let digit = Number(candidate[candidate.length - 1 - index]);
      if (index % 2 === 1) digit = digit * 2 > 9 ? digit * 2 - 9 : digit * 2;
      sum += digit;
    }
    if (sum % 10 === 0) return candidate;
  }
  throw new Error('unreachable');
}

function mod97(digits: string): number {
  let remainder = 0;
  for (const char of digits) remainder = (remainder * 10 + Number(char)) % 97;
  return remainder;
}

/** A valid IBAN for `country` and an (upper-case alphanumeric) BBAN, with computed check digits. */
export function ibanFor(country: string, bban: string): string {
  const numeric = `${bban}${country}00`.replace(/[A-Z]/g, (letter) => String(letter.charCodeAt(0) - 55));
  const check = String(98 - mod97(numeric)).padStart(2, '0');
  return `${country}${check}${bban}`;
}

/** Groups of four separated by spaces, as IBANs and cards are printed. */
export function inGroupsOfFour(value: string): string {
  return value.replace(/(.{4})(?=.)/g, '$1 ');
}

export function jwtFor(header: object, payload: object): string {
  const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const signingInput = `${encode(header)}.${encode(payload)}`;
  const signature = createHmac('sha256', 'test-secret').update(signingInput).digest('base64url');
  return `${signingInput}.${signature}`;
}

export const SAMPLE_JWT = jwtFor({ alg: 'HS256', typ: 'JWT' }, { sub: '1234567890', name: 'Jane Doe', iat: 1516239022 });

export const SAMPLE_PRIVATE_KEY = [
  '-----BEGIN RSA PRIVATE KEY-----',
  'MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu',
  'KUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQJAIJLixBy2qpFoS4DSmoEm',
  '-----END RSA PRIVATE KEY-----',
].join('\n');

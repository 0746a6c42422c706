import { isGatehouseError } from '../../api/errors.js';
import {
  canonicalForHash,
  createValueHasher,
  genericPartial,
  isStronger,
  partialMask,
  redactionMarker,
  strongest,
} from './strategies.js';

const KEY = Buffer.from('0123456789abcdef0123456789abcdef');
const OTHER_KEY = Buffer.from('fedcba9876543210fedcba9876543210');

describe('strength', () => {
  test('redact > hash > partial', () => {
    expect(isStronger('redact', 'hash')).toBe(true);
    expect(isStronger('hash', 'partial')).toBe(true);
    expect(isStronger('partial', 'redact')).toBe(false);
    expect(isStronger('hash', 'hash')).toBe(false);
    expect(isStronger('partial', undefined)).toBe(true);
    expect(strongest('partial', 'redact')).toBe('redact');
    expect(strongest('redact', 'partial')).toBe('redact');
    expect(strongest(undefined, 'hash')).toBe('hash');
  });
});

describe('redact', () => {
  test('marks what was found, or just that something was', () => {
    expect(redactionMarker()).toBe('[REDACTED]');
    expect(redactionMarker('credit-card')).toBe('[REDACTED:credit-card]');
  });
});

describe('hash', () => {
  const hash = createValueHasher(KEY);

  test('is stable: equal inputs give equal outputs, for joins and grouping', () => {
    expect(hash('jane@example.com', 'utf8')).toBe(hash('jane@example.com', 'utf8'));
    expect(createValueHasher(Buffer.from(KEY))('jane@example.com', 'utf8')).toBe(hash('jane@example.com', 'utf8'));
  });

  test('is prefixed, truncated hex', () => {
    expect(hash('x', 'utf8')).toMatch(/^\[HASH:[0-9a-f]{20}\]$/);
  });

  test('depends on the input and on the key', () => {
    expect(hash('a', 'utf8')).not.toBe(hash('b', 'utf8'));
    expect(createValueHasher(OTHER_KEY)('a', 'utf8')).not.toBe(hash('a', 'utf8'));
  });

  test('is keyed HMAC-SHA-256 (matches an independent computation)', async () => {
    const { createHmac } = await import('node:crypto');
    const expected = createHmac('sha256', KEY).update('4111111111111111').digest('hex').slice(0, 20);
    expect(hash('4111111111111111', 'utf8')).toBe(`[HASH:${expected}]`);
  });

  test('hashes the same bytes whether given a string or a Latin-1 view of its UTF-8', () => {
    const value = 'Zoë Ångström';
    expect(hash(Buffer.from(value, 'utf8').toString('latin1'), 'latin1')).toBe(hash(value, 'utf8'));
  });

  test('copies the key: changing the caller buffer later changes nothing', () => {
    const key = Buffer.from(KEY);
    const hasher = createValueHasher(key);
    const before = hasher('v', 'utf8');
    key.fill(0);
    expect(hasher('v', 'utf8')).toBe(before);
  });

  test('refuses keys shorter than 16 bytes', () => {
    let thrown: unknown;
    try {
      createValueHasher(Buffer.from('short'));
    } catch (error) {
      thrown = error;
    }
    expect(isGatehouseError(thrown, 'GH_ERR_MASKING_HASH_KEY')).toBe(true);
  });

  test.each([
    ['4111 1111 1111 1111', 'credit-card', '4111111111111111'],
    ['123-45-6789', 'us-ssn', '123456789'],
    ['de89 3704 0044 0532 0130 00', 'iban', 'DE89370400440532013000'],
    ['Jane.Doe@Example.COM', 'email', 'jane.doe@example.com'],
    ['AKIAIOSFODNN7EXAMPLE', 'cloud-access-key', 'AKIAIOSFODNN7EXAMPLE'],
    ['Free Text', undefined, 'Free Text'],
  ] as const)('hashes %j as %s in canonical form %j', (text, kind, canonical) => {
    expect(canonicalForHash(text, kind)).toBe(canonical);
  });
});

describe('partial', () => {
  test.each([
    ['4111111111111111', 'credit-card', '************1111'],
    ['4111 1111 1111 1111', 'credit-card', '**** **** **** 1111'],
    ['3782 822463 10005', 'credit-card', '**** ****** *0005'],
    ['123-45-6789', 'us-ssn', '***-**-6789'],
    ['DE89 3704 0044 0532 0130 00', 'iban', 'DE** **** **** **** **30 00'],
    ['jane.doe@example.com', 'email', 'j***@example.com'],
    ['j@example.com', 'email', 'j***@example.com'],
    ['+tag@example.com', 'email', '****@example.com'],
    ['AKIAIOSFODNN7EXAMPLE', 'cloud-access-key', 'AKIA****'],
    ['ghp_16C7e42F292c6912E7710c838347Ae178B4a', 'cloud-access-key', 'ghp_****'],
    ['wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'cloud-access-key', '****'],
    ['eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig', 'jwt', '[REDACTED:jwt]'],
    ['-----BEGIN PRIVATE KEY-----…', 'private-key', '[REDACTED:private-key]'],
    ['customer-0000001234', undefined, '****1234'],
    ['short', undefined, '****'],
  ] as const)('%j (%s) becomes %j', (text, kind, expected) => {
    expect(partialMask(text, kind)).toBe(expected);
  });

  test('the generic form hides length, ignores trailing padding and never splits a character', () => {
    expect(genericPartial('abcdefghijkl')).toBe('****ijkl');
    expect(genericPartial('abcdefghijklmnopqrstuvwxyz')).toBe('****wxyz');
    expect(genericPartial('padded-char-value      ')).toBe('****alue');
    expect(genericPartial('Fahrvergnügen 😀😀')).toBe('****😀😀');
    // A Latin-1 view of UTF-8: the kept tail starts on a character boundary, never mid-character.
    const bytes = Buffer.from('long value ending in ü', 'utf8').toString('latin1');
    expect(Buffer.from(genericPartial(bytes), 'latin1').toString('utf8')).toBe('****n ü');
  });
});

// Properties of the whole engine: whatever surrounds a sensitive value, and whatever strategy masks
// it, the output never contains the value; and adversarial input (long runs of near-matches built to
// trigger backtracking or quadratic rescans) finishes and still masks what it hides.
import fc from 'fast-check';
import type { MaskingRuleT } from '../../api/kinds/kinds.js';
import { ibanFor, inGroupsOfFour, jwtFor, withLuhnDigit } from './detector-fixtures.js';
import { FILE_EXTENSION_TLDS } from './email-detector.js';
import { createMasker } from './masker.js';
import type { MaskingStrategy } from './strategies.js';

const HASH_KEY = Buffer.from('property-test-hash-key-0123456789');
const STRATEGIES: readonly MaskingStrategy[] = ['redact', 'hash', 'partial'];

function maskersFor(detector: NonNullable<MaskingRuleT['detectors']>[number]) {
  return STRATEGIES.map((strategy) => {
    const masker = createMasker([{ detectors: [detector], strategy }], { hashKey: HASH_KEY });
    const plan = masker.planColumn({ name: 'notes' });
    return (value: string) => masker.maskValue(plan, value);
  });
}

const digits = (length: number) => fc.array(fc.integer({ min: 0, max: 9 }), { minLength: length, maxLength: length }).map((d) => d.join(''));
const charsFrom = (alphabet: string, length: number) =>
  fc.array(fc.constantFrom(...alphabet), { minLength: length, maxLength: length }).map((chars) => chars.join(''));
const UPPER_DIGITS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const ALNUM = `${UPPER_DIGITS}abcdefghijklmnopqrstuvwxyz`;

const ISSUERS: ReadonlyArray<readonly [prefix: string, length: number]> = [
  ['4', 16], ['4', 13], ['4', 19], ['51', 16], ['55', 16], ['2221', 16], ['2720', 16], ['34', 15], ['37', 15],
  ['6011', 16], ['65', 19], ['644', 16], ['3528', 16], ['62', 17], ['36', 14], ['300', 14], ['2200', 16], ['6759', 18],
];

const cardNumber = fc
  .constantFrom(...ISSUERS)
  .chain(([prefix, length]) => digits(length - prefix.length - 1).map((body) => withLuhnDigit(prefix + body)))
  .chain((pan) => {
    const printed = [pan];
    if (pan.length === 16) printed.push(inGroupsOfFour(pan), inGroupsOfFour(pan).replace(/ /g, '-'));
    if (pan.length === 15) printed.push(`${pan.slice(0, 4)} ${pan.slice(4, 10)} ${pan.slice(10)}`);
    return fc.constantFrom(...printed);
  });

const ssn = fc
  .tuple(fc.integer({ min: 1, max: 899 }).filter((area) => area !== 666), fc.integer({ min: 1, max: 99 }), fc.integer({ min: 1, max: 9999 }))
  .map(([area, group, serial]) => `${String(area).padStart(3, '0')}-${String(group).padStart(2, '0')}-${String(serial).padStart(4, '0')}`);

const IBAN_SHAPES: ReadonlyArray<readonly [country: string, bbanLength: number, letters: number]> = [
  ['DE', 18, 0], ['GB', 18, 4], ['FR', 23, 0], ['NO', 11, 0], ['NL', 14, 4], ['MT', 27, 4], ['CH', 17, 0], ['SA', 20, 0],
];
const iban = fc
  .constantFrom(...IBAN_SHAPES)
  .chain(([country, length, letters]) =>
    fc.tuple(charsFrom('ABCDEFGHIJKLMNOPQRSTUVWXYZ', letters), digits(length - letters)).map(([bank, rest]) => ibanFor(country, bank + rest)),
  )
  .chain((value) => fc.constantFrom(value, inGroupsOfFour(value)));

const email = fc
  .emailAddress()
  .filter((address) => !FILE_EXTENSION_TLDS.has(address.slice(address.lastIndexOf('.') + 1).toLowerCase()))
  // A local part that is its first character plus asterisks (`*@x.io`, `j***@x.io`) already reads like
  // its own partial form `j***@x.io`: the output "contains" it without revealing anything more.
  .filter((address) => !/^[^@]?\*+@/.test(address));

const jwt = fc
  .record({ alg: fc.constantFrom('HS256', 'RS256', 'ES384', 'EdDSA'), kid: fc.string() })
  .chain((header) => fc.record({ sub: fc.string(), n: fc.integer() }).map((payload) => jwtFor(header, payload)));

const cloudKey = fc.oneof(
  fc.tuple(fc.constantFrom('AKIA', 'ASIA'), charsFrom(UPPER_DIGITS, 16)).map(([prefix, body]) => prefix + body),
  fc.tuple(fc.constantFrom('ghp_', 'gho_', 'ghs_', 'ghu_', 'ghr_'), charsFrom(ALNUM, 36)).map(([prefix, body]) => prefix + body),
  charsFrom(`${ALNUM}-_`, 35).map((body) => `AIza${body}`),
  fc.tuple(fc.constantFrom('xoxb', 'xoxp', 'xoxa'), digits(12), digits(13), charsFrom(ALNUM, 24)).map((parts) => parts.join('-')),
);

const privateKey = fc
  .array(charsFrom(`${ALNUM}+/`, 64), { minLength: 1, maxLength: 5 })
  .map((lines) => ['-----BEGIN PRIVATE KEY-----', ...lines, '-----END PRIVATE KEY-----'].join('\n'));

/** Arbitrary text around the value: printable ASCII, any Unicode, or raw control characters. */
const surrounding = fc.oneof(fc.string(), fc.string({ unit: 'grapheme' }), fc.string({ unit: 'binary' }));

const SENSITIVE = [
  ['credit-card', cardNumber],
  ['us-ssn', ssn],
  ['iban', iban],
  ['email', email],
  ['jwt', jwt],
  ['cloud-access-key', cloudKey],
  ['private-key', privateKey],
] as const;

describe.each(SENSITIVE)('%s embedded in random text', (detector, values) => {
  const maskers = maskersFor(detector);

  test('is masked by every strategy, and the original never survives', () => {
    fc.assert(
      fc.property(surrounding, values, surrounding, (before, value, after) => {
        const text = `${before} ${value} ${after}`;
        for (const mask of maskers) {
          const result = mask(text);
          expect(result.masked).toBeGreaterThan(0);
          expect(result.value).not.toContain(value);
        }
      }),
      { numRuns: 300 },
    );
  });

  test('is masked inside JSON and as a whole value', () => {
    fc.assert(
      fc.property(values, (value) => {
        for (const mask of maskers) {
          expect(mask(JSON.stringify({ field: value })).value).not.toContain(value);
          expect(mask(value).value).not.toContain(value);
        }
      }),
      { numRuns: 100 },
    );
  });
});

describe('adversarial input', () => {
  const everything = createMasker(
    [{ detectors: ['credit-card', 'email', 'iban', 'us-ssn', 'jwt', 'cloud-access-key', 'private-key'] }],
    { hashKey: HASH_KEY },
  );
  const plan = everything.planColumn({ name: 'notes' });
  const mask = (text: string) => everything.maskValue(plan, text).value;

  /** Pieces of every detector's trigger and near-matches, to be repeated and interleaved. */
  const FRAGMENTS = [
    '4', '4111', '1', '0', ' ', '-', '.', '4111 1111 1111 111', '@', 'a', 'a.', 'a@b', '.com', '..', 'eyJ', 'eyJhbGciOiJub25lIn0',
    'AKIA', 'ASIA', 'AIza', 'ghp_', 'github_pat_', 'xoxb-', 'AccountKey=', 'private_key_id', '"', ':', '=', '\\', 'DE89', 'DE',
    '89', '-----BEGIN ', '-----END ', '-----', 'PRIVATE KEY', 'PRIVATE KEY-----', '123-45-', '6789', 'ü', '😀',
  ];
  const hostileText = fc.array(fc.constantFrom(...FRAGMENTS), { maxLength: 3000, size: 'max' }).map((parts) => parts.join(''));
  const planted = fc.oneof(cardNumber, ssn, iban, email, jwt, cloudKey, privateKey);

  test('finishes, and a sensitive value planted anywhere in it is still masked', () => {
    fc.assert(
      fc.property(hostileText, planted, hostileText, (before, value, after) => {
        expect(mask(`${before} ${value} ${after}`)).not.toContain(value);
      }),
      { numRuns: 200 },
    );
  }, 60_000);

  // A quadratic rescan on any of these would take minutes at this size; linear scans take milliseconds.
  test.each([
    ['digits and spaces', '4 '.repeat(500_000)],
    ['digit groups', '4111 '.repeat(200_000)],
    ['one long digit run', '4'.repeat(1_000_000)],
    ['at signs', 'a@'.repeat(500_000)],
    ['a long local part', `${'a'.repeat(1_000_000)}@`],
    ['a long domain without TLD', `a@${'b'.repeat(1_000_000)}`],
    ['dotted domain labels', `a@${'b.1'.repeat(300_000)}`],
    ['JWT headers', 'eyJ.'.repeat(250_000)],
    ['a long base64url run', `eyJ${'A'.repeat(1_000_000)}`],
    ['JWT-like segments', `eyJhbGciOiJub25lIn0.${'eyJ'.repeat(300_000)}`],
    ['IBAN-like prefixes', 'DE89 '.repeat(200_000)],
    ['dashes', '-'.repeat(1_000_000)],
    ['SSN-like', '123-45-'.repeat(150_000)],
    ['BEGIN lines', '-----BEGIN '.repeat(100_000)],
    ['private key headers without END', '-----BEGIN PRIVATE KEY-----'.repeat(40_000)],
    ['END lines', `-----BEGIN PRIVATE KEY-----${'-----END '.repeat(100_000)}`],
    ['key triggers', 'AccountKey='.repeat(100_000)],
    ['Slack triggers', 'xoxb-'.repeat(200_000)],
  ])('%s', (_name, text) => {
    expect(typeof mask(text)).toBe('string');
  }, 30_000);
});

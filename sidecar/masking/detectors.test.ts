import { DETECTOR_FINDERS, detectSpans, recogniseWholeValue, type DetectorName } from './detectors.js';
import { ibanFor, inGroupsOfFour, jwtFor, SAMPLE_JWT, SAMPLE_PRIVATE_KEY, withLuhnDigit } from './detector-fixtures.js';

function found(detector: DetectorName, text: string): string[] {
  const matches: string[] = [];
  DETECTOR_FINDERS[detector](text, (start, end) => matches.push(text.slice(start, end)));
  return matches;
}

function expectFinds(detector: DetectorName, cases: ReadonlyArray<readonly [text: string, expected: string]>): void {
  test.each(cases)('finds %j', (text, expected) => {
    expect(found(detector, text)).toEqual([expected]);
  });
}

function expectIgnores(detector: DetectorName, texts: readonly string[]): void {
  test.each(texts.map((text) => [text]))('ignores %j', (text) => {
    expect(found(detector, text)).toEqual([]);
  });
}

describe('credit-card', () => {
  expectFinds('credit-card', [
    ['4111111111111111', '4111111111111111'],
    ['4111 1111 1111 1111', '4111 1111 1111 1111'],
    ['4111-1111-1111-1111', '4111-1111-1111-1111'],
    ['5555555555554444', '5555555555554444'],
    ['2223003122003222', '2223003122003222'],
    ['amex 378282246310005', '378282246310005'],
    ['amex 3782 822463 10005 printed 4-6-5', '3782 822463 10005'],
    ['6011111111111117', '6011111111111117'],
    ['3530111333300000', '3530111333300000'],
    ['diners 3056 930902 5904', '3056 930902 5904'],
    ['6200000000000005', '6200000000000005'],
    ['visa13 4222222222222', '4222222222222'],
    ['maestro 6759649826438453', '6759649826438453'],
    ['{"card":"4111111111111111","exp":"12/29"}', '4111111111111111'],
    ['{"pan":4111111111111111}', '4111111111111111'],
    ['pay?pan=4111111111111111&cvv=123', '4111111111111111'],
    ['Card: 4111 1111 1111 1111.', '4111 1111 1111 1111'],
    ['Order A1 4111 1111 1111 1111 shipped', '4111 1111 1111 1111'],
    ['ref 2024-01-15 4111111111111111', '4111111111111111'],
    ['card_4111111111111111', '4111111111111111'],
  ]);
  expectIgnores('credit-card', [
    '4111111111111112', // Luhn fails
    '4111 1111 1111 1112',
    withLuhnDigit('100000000000000'), // a Luhn-valid 16-digit order id: no issuer starts with 1
    withLuhnDigit('900000000012345'),
    withLuhnDigit('170000000000'), // epoch milliseconds
    withLuhnDigit('1700000000000000'),
    '1453412853234216962', // snowflake id
    '2024-01-15',
    '2024-01-15 10:30:00.123456',
    '20240115103000',
    '+1 (555) 123-4567',
    '+44 20 7946 0958',
    '555-123-4567',
    'x4111111111111111', // glued to letters: an identifier or hex
    '4111111111111111abc',
    'deadbeef4111111111111111',
    '3.4111111111111111', // a decimal fraction
    '41111111111111111111', // 20 digits
    '4111 1111-1111 1111', // mixed separators
    '4111 1111 1111 11 11', // not a printed card layout
    '4111  1111  1111  1111', // double spaces
    'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
    '',
  ]);

  test('finds every card in a longer text, with exact spans', () => {
    const text = 'first 4111111111111111, second 5555-5555-5555-4444 and done';
    expect(detectSpans(text, ['credit-card'])).toEqual([
      { start: 6, end: 22, detector: 'credit-card' },
      { start: 31, end: 50, detector: 'credit-card' },
    ]);
  });
});

describe('iban', () => {
  expectFinds('iban', [
    ['DE89370400440532013000', 'DE89370400440532013000'],
    ['DE89 3704 0044 0532 0130 00', 'DE89 3704 0044 0532 0130 00'],
    ['GB82 WEST 1234 5698 7654 32', 'GB82 WEST 1234 5698 7654 32'],
    ['FR1420041010050500013M02606', 'FR1420041010050500013M02606'],
    ['NL91ABNA0417164300', 'NL91ABNA0417164300'],
    ['NO9386011117947', 'NO9386011117947'],
    ['MT84MALT011000012345MTLCAST001S', 'MT84MALT011000012345MTLCAST001S'],
    ['IBAN: DE89 3704 0044 0532 0130 00.', 'DE89 3704 0044 0532 0130 00'],
    ['{"iban":"CH9300762011623852957"}', 'CH9300762011623852957'],
    ['lower case de89370400440532013000', 'de89370400440532013000'],
    [ibanFor('BE', '539007547034'), ibanFor('BE', '539007547034')],
  ]);
  expectIgnores('iban', [
    'DE89370400440532013001', // bad checksum
    'DE89 3704 0044 0532 0130 01',
    'DE8937040044053201300', // one short of Germany's 22
    'DE893704004405320130000', // one too long
    'XX89370400440532013000', // no such country
    'ADE89370400440532013000', // glued to a letter
    'DE89 37040044 0532 0130 00', // not groups of four
    'AB12 and some text',
    'SKU: FR12-3456',
  ]);
});

describe('us-ssn', () => {
  expectFinds('us-ssn', [
    ['123-45-6789', '123-45-6789'],
    ['SSN: 078-05-1120.', '078-05-1120'],
    ['{"ssn":"899-99-9999"}', '899-99-9999'],
    ['ids 001-01-0001', '001-01-0001'],
  ]);
  expectIgnores('us-ssn', [
    '000-12-3456', // area 000
    '666-12-3456', // area 666
    '900-12-3456', // areas 900–999
    '987-65-4321',
    '123-00-4567', // group 00
    '123-45-0000', // serial 0000
    '123456789', // undashed: too ambiguous
    '123 45 6789',
    '1-123-45-6789', // part of a longer dashed number
    '123-45-6789-0',
    'a123-45-6789',
    '555-123-4567',
    '2024-01-15',
  ]);
});

describe('email', () => {
  expectFinds('email', [
    ['john.doe@example.com', 'john.doe@example.com'],
    ['Contact <jane+tag@mail.example.co.uk> today', 'jane+tag@mail.example.co.uk'],
    ["o'brien@example.ie", "o'brien@example.ie"],
    ["quoted 'ann@example.org'", 'ann@example.org'],
    ['MAILTO:A@B.IO', 'A@B.IO'],
    ['write to x@y.museum.', 'x@y.museum'],
    ['{"email":"a_b@sub-domain.example.com"}', 'a_b@sub-domain.example.com'],
    ['dashes x@example.com-', 'x@example.com'],
  ]);
  expectIgnores('email', [
    'icon@2x.png', // an asset name, not an address
    'logo@3x.svg',
    'user@localhost',
    'foo@bar',
    '@example.com',
    'npm i pkg@1.2.3',
    'a@b.c',
    'x@..com',
    'no at sign here.com',
  ]);

  test('finds addresses back to back', () => {
    expect(found('email', 'a@x.io,b@y.io c@z.io')).toEqual(['a@x.io', 'b@y.io', 'c@z.io']);
  });
});

describe('jwt', () => {
  const unsigned = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"x"}').toString('base64url')}.`;
  expectFinds('jwt', [
    [SAMPLE_JWT, SAMPLE_JWT],
    [`Authorization: Bearer ${SAMPLE_JWT}`, SAMPLE_JWT],
    [`{"token":"${SAMPLE_JWT}"}`, SAMPLE_JWT],
    [`${SAMPLE_JWT}.`, SAMPLE_JWT], // sentence end
    [`alg none: ${unsigned} end`, unsigned],
  ]);
  const noAlg = jwtFor({ typ: 'JWT' }, { sub: 'x' });
  const base64Json = Buffer.from('{"a":1,"b":"two"}').toString('base64url');
  expectIgnores('jwt', [
    base64Json, // ordinary base64 of JSON
    `${base64Json}.${base64Json}.${base64Json}`, // JSON header without alg
    noAlg,
    SAMPLE_JWT.split('.').slice(0, 2).join('.'), // two segments
    SAMPLE_JWT.split('.')[0]!,
    `QUJD${SAMPLE_JWT}`, // inside a longer base64 run
    Buffer.from('just some bytes that happen to be base64').toString('base64'),
    'eyJ',
  ]);
});

describe('cloud-access-key', () => {
  const githubPat = `github_pat_11ABCDEFG0${'a1B2c3D4e5'.repeat(7)}xyz_789`;
  expectFinds('cloud-access-key', [
    ['AKIAIOSFODNN7EXAMPLE', 'AKIAIOSFODNN7EXAMPLE'],
    ['aws_access_key_id=ASIAY34FZKBOKMUTVV7A', 'ASIAY34FZKBOKMUTVV7A'],
    ['aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'],
    ['AWS_SECRET_ACCESS_KEY="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'],
    ['key=AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe', 'AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe'],
    ['"private_key_id": "d41d8cd98f00b204e9800998ecf8427ed41d8cd9",', 'd41d8cd98f00b204e9800998ecf8427ed41d8cd9'],
    [
      'DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;EndpointSuffix=core.windows.net',
      'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==',
    ],
    ['token ghp_16C7e42F292c6912E7710c838347Ae178B4a end', 'ghp_16C7e42F292c6912E7710c838347Ae178B4a'],
    ['gho_16C7e42F292c6912E7710c838347Ae178B4a', 'gho_16C7e42F292c6912E7710c838347Ae178B4a'],
    ['ghs_16C7e42F292c6912E7710c838347Ae178B4a', 'ghs_16C7e42F292c6912E7710c838347Ae178B4a'],
    [githubPat, githubPat],
    ['SLACK_TOKEN=xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx', 'xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx'],
    ['xoxp-1234567890-abcdefghij', 'xoxp-1234567890-abcdefghij'],
  ]);
  expectIgnores('cloud-access-key', [
    'AKIAIOSFODNN7EXAMPL', // 15 characters
    'AKIAIOSFODNN7EXAMPLEX', // 17
    'XAKIAIOSFODNN7EXAMPLE',
    'AKIA is a prefix',
    'AIzaShort',
    'AccountKey=short;',
    'ghp_short',
    'xoxb-123',
    'xoxz-1234567890-abcdefghij',
    '"private_key_id": "not-hex"',
    'aws_secret_access_key = tooShort',
  ]);
});

describe('private-key', () => {
  const jsonEscaped = SAMPLE_PRIVATE_KEY.replace(/\n/g, '\\n');
  const openssh = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----';
  const encrypted = '-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHzBJBgkqhkiG9w0BBQ0w\n-----END ENCRYPTED PRIVATE KEY-----';
  const pgp = '-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBF\n-----END PGP PRIVATE KEY BLOCK-----';
  expectFinds('private-key', [
    [SAMPLE_PRIVATE_KEY, SAMPLE_PRIVATE_KEY],
    [`key:\n${SAMPLE_PRIVATE_KEY}\nafter`, SAMPLE_PRIVATE_KEY],
    [`{"private_key": "${jsonEscaped}\\n", "x": 1}`, jsonEscaped],
    [openssh, openssh],
    [encrypted, encrypted],
    [pgp, pgp],
    // Truncated: no END line, so everything after BEGIN is masked.
    ['k=-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC', '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC'],
  ]);
  expectIgnores('private-key', [
    '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----',
    '-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----',
    '-----BEGIN RSA PUBLIC KEY-----',
    'the words PRIVATE KEY alone',
  ]);
});

describe('detectSpans', () => {
  test('reports spans of several detectors in start order', () => {
    const text = `mail a@b.io card 4111111111111111 ssn 123-45-6789`;
    expect(detectSpans(text, ['us-ssn', 'credit-card', 'email']).map((span) => span.detector)).toEqual([
      'email',
      'credit-card',
      'us-ssn',
    ]);
  });

  test('finds nothing when asked for no detectors', () => {
    expect(detectSpans('4111111111111111', [])).toEqual([]);
  });
});

describe('recogniseWholeValue', () => {
  test.each([
    ['4111 1111 1111 1111', 'credit-card'],
    ['  jane@example.com ', 'email'],
    ['123-45-6789', 'us-ssn'],
    [inGroupsOfFour('DE89370400440532013000'), 'iban'],
    ['AKIAIOSFODNN7EXAMPLE', 'cloud-access-key'],
    ['card 4111111111111111', undefined],
    ['plain', undefined],
    ['   ', undefined],
  ])('%j is %s', (text, kind) => {
    expect(recogniseWholeValue(text)).toBe(kind);
  });
});

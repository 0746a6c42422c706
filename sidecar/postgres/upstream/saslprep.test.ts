import { saslprep } from './saslprep.js';

describe('saslprep', () => {
  test('leaves ASCII alone, control characters included (PostgreSQL\'s fast path)', () => {
    expect(saslprep('user')).toBe('user');
    expect(saslprep('pa ss\u0007word')).toBe('pa ss\u0007word');
  });

  test('follows the RFC 4013 examples', () => {
    expect(saslprep('I\u00ADX')).toBe('IX'); // soft hyphen mapped to nothing
    expect(saslprep('\u00AA')).toBe('a'); // NFKC
    expect(saslprep('\u2168')).toBe('IX'); // NFKC
  });

  test('maps non-ASCII spaces to a space and drops zero-width joiners', () => {
    expect(saslprep('p\u00A0w\u200Dd')).toBe('p wd');
  });

  test('uses a prohibited password unchanged, as libpq does, instead of refusing it', () => {
    expect(saslprep('\u00E9\u0007')).toBe('\u00E9\u0007'); // control character
    expect(saslprep('\u00E9\uE000')).toBe('\u00E9\uE000'); // private use
    expect(saslprep('\u0627\u0031')).toBe('\u0627\u0031'); // right-to-left text must end right-to-left
    expect(saslprep('\u0627a\u0628')).toBe('\u0627a\u0628'); // and may not mix with left-to-right
  });

  test('accepts well-formed right-to-left passwords', () => {
    expect(saslprep('\u0627\u0031\u0628')).toBe('\u0627\u0031\u0628');
  });
});

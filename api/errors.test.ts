import { ERROR_CODES, GatehouseError, formatErrorMessage, isGatehouseError, type ErrorCode } from './errors.js';

describe('error registry', () => {
  test('every code is GH_ERR_ and upper snake case, with a message', () => {
    for (const [code, info] of Object.entries(ERROR_CODES)) {
      expect(code).toMatch(/^GH_ERR_[A-Z0-9_]+$/);
      expect(info.message.trim()).not.toBe("");
    }
  });

  test('messages fill placeholders from details and keep unknown ones visible', () => {
    expect(formatErrorMessage('GH_ERR_BAD_DURATION', { value: '"5x"' })).toContain('"5x"');
    expect(formatErrorMessage('GH_ERR_BAD_DURATION')).toContain('{value}');
  });

  test('GatehouseError carries its code for branching', () => {
    const error = new GatehouseError('GH_ERR_SQL_EMPTY');
    expect(isGatehouseError(error, 'GH_ERR_SQL_EMPTY')).toBe(true);
    expect(isGatehouseError(error, 'GH_ERR_USAGE' as ErrorCode)).toBe(false);
    expect(isGatehouseError(new Error('GH_ERR_SQL_EMPTY'))).toBe(false);
    expect(error).toBeInstanceOf(Error);
  });
});

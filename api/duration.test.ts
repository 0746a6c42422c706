import { formatDuration, parseDuration } from './duration.js';
import { isGatehouseError } from './errors.js';

describe('durations', () => {
  test.each([
    ['500ms', 500],
    ['90s', 90_000],
    ['15m', 900_000],
    ['1h30m', 5_400_000],
    ['1.5h', 5_400_000],
  ])('%s is %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  test.each(['', '15', 'm', '1d', '-5m', '5 m', '1h 30m', 'PT5M'])('%j is rejected with GH_ERR_BAD_DURATION', (text) => {
    let caught: unknown;
    try {
      parseDuration(text);
    } catch (error) {
      caught = error;
    }
    expect(isGatehouseError(caught, 'GH_ERR_BAD_DURATION')).toBe(true);
  });

  test('formats whole units', () => {
    expect([3_600_000, 600_000, 5000, 250].map(formatDuration)).toEqual(['1h', '10m', '5s', '250ms']);
  });
});

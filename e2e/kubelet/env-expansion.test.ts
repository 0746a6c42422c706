import { expandVariables, lookupIn } from './env-expansion.js';

describe('expandVariables (Kubernetes $(VAR) semantics)', () => {
  const lookup = lookupIn(new Map([['POD', 'web-1'], ['NS', 'payments'], ['EMPTY', '']]));

  it.each([
    ['$(POD).$(NS)', 'web-1.payments'],
    ['prefix-$(POD)-suffix', 'prefix-web-1-suffix'],
    ['$(MISSING)', '$(MISSING)'],
    ['$$(POD)', '$(POD)'],
    ['$$$(POD)', '$web-1'],
    ['cost $5', 'cost $5'],
    ['unclosed $(POD', 'unclosed $(POD'],
    ['trailing $', 'trailing $'],
    ['x$(EMPTY)y', 'xy'],
    ['$()', '$()'],
    ['no references', 'no references'],
  ])('%s → %s', (input, expected) => {
    expect(expandVariables(input, lookup)).toBe(expected);
  });

  it('tries maps in order', () => {
    const ordered = lookupIn(new Map([['A', 'first']]), new Map([['A', 'second'], ['B', 'b']]));
    expect(expandVariables('$(A)$(B)', ordered)).toBe('firstb');
  });
});

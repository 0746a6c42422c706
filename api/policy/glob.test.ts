// The column glob grammar, defined once here for both the manifest validator and the sidecar's masker.
import { parseColumnGlob } from './glob.js';

describe('parseColumnGlob', () => {
  test.each([
    ['email', { column: 'email' }],
    ['customers.card_number', { table: 'customers', column: 'card_number' }],
    ['*_token', { column: '*_token' }],
    ['pay-$ments.c?rd*', { table: 'pay-$ments', column: 'c?rd*' }],
  ] as const)('%j splits into %j', (glob, parts) => {
    expect(parseColumnGlob(glob)).toEqual(parts);
  });

  test.each(['a.b.c', '', 'customers.', '.email', 'card number', 'e"mail', 'public.customers.email'])('refuses %j naming the grammar', (glob) => {
    expect(() => parseColumnGlob(glob)).toThrow(expect.objectContaining({ code: 'GH_ERR_BAD_GLOB', message: expect.stringContaining('`column` or `table.column`') }));
  });
});

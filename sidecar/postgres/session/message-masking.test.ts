// What of a server error or notice a client may see while masking rules are in force.
import { createMasker } from '../../masking/masker.js';
import type { PgNotice } from '../protocol/notice-fields.js';
import { encodeBackendMessage } from '../protocol/backend-encoders.js';
import { decodeBackendMessage } from '../protocol/backend-messages.js';
import type { Frame } from '../protocol/frame-splitter.js';
import { maskNotice, maskNotificationFrame, withholdQuotedValues, WITHHELD_DETAIL, WITHHELD_MESSAGE } from './message-masking.js';

const error = (fields: Partial<PgNotice> & { code: string; message: string }): PgNotice => ({ severity: 'ERROR', ...fields });

describe('withholdQuotedValues', () => {
  it('passes classes that never quote stored values whole', () => {
    expect(withholdQuotedValues(error({ code: '42703', message: 'column "nosuch" does not exist', hint: 'Perhaps you meant "name".' }))).toBeUndefined();
    expect(withholdQuotedValues(error({ code: '40P01', message: 'deadlock detected', detail: 'Process 1 waits for ShareLock on transaction 2.' }))).toBeUndefined();
    expect(withholdQuotedValues(error({ code: '23505', message: 'duplicate key value violates unique constraint "k"', constraint: 'k' }))).toBeUndefined();
  });

  it('redacts quoted values, keeping the identifiers the error names in its own fields', () => {
    expect(withholdQuotedValues(error({ code: '22P02', message: 'invalid input syntax for type integer: "Ada Lovelace"' }))?.message)
      .toBe('invalid input syntax for type integer: "[REDACTED]"');
    const check = withholdQuotedValues(error({
      code: '23514', message: 'new row for relation "customers" violates check constraint "name_short"',
      detail: 'Failing row contains (1, Ada Lovelace, ada@example.com).', table: 'customers', constraint: 'name_short', schema: 'public',
    }));
    expect(check).toEqual({
      severity: 'ERROR', code: '23514', message: 'new row for relation "customers" violates check constraint "name_short"',
      detail: WITHHELD_DETAIL, table: 'customers', constraint: 'name_short', schema: 'public',
    });
    // A quoted value equal to an identifier of another error is still a value here.
    expect(withholdQuotedValues(error({ code: '22007', message: 'invalid input syntax for type date: "customers"', column: 'x' }))?.message)
      .toBe('invalid input syntax for type date: "[REDACTED]"');
  });

  it('withholds details, contexts and internal queries, which quote values unquoted', () => {
    const json = withholdQuotedValues(error({
      code: '22P02', message: 'invalid input syntax for type json', detail: 'Token "Ada" is invalid.',
      where: 'JSON data, line 1: Ada...', internalQuery: "SELECT 'Ada'", internalPosition: '8', position: '8',
    }));
    expect(json).toEqual({ severity: 'ERROR', code: '22P02', message: 'invalid input syntax for type json', detail: WITHHELD_DETAIL, position: '8' });
  });

  it('withholds whole what code in the database raises', () => {
    const notice = withholdQuotedValues({ severity: 'NOTICE', code: '00000', message: 'Ada Lovelace', where: 'PL/pgSQL function inline_code_block line 1 at RAISE' });
    expect(notice).toEqual({ severity: 'NOTICE', code: '00000', message: WITHHELD_MESSAGE });
    expect(withholdQuotedValues(error({ code: 'P0001', message: 'customer Ada Lovelace has no card', hint: 'call Ada' }))).toEqual(
      error({ code: 'P0001', message: WITHHELD_MESSAGE, hint: WITHHELD_DETAIL }),
    );
    // PostgreSQL's own notices quote what they name, and sometimes values (a text-search query's words): redacted.
    expect(withholdQuotedValues({ severity: 'NOTICE', code: '00000', message: 'table "t" does not exist, skipping' })?.message)
      .toBe('table "[REDACTED]" does not exist, skipping');
  });
});

describe('maskNotice', () => {
  const cast = error({ code: '22P02', message: 'invalid input syntax for type integer: "4111 1111 1111 1111 Ada"' });

  it('withholds quoted values only where rules mask columns, and masks detected values in every text', () => {
    const detectorsOnly = maskNotice(createMasker([{ detectors: ['credit-card'], strategy: 'partial' }]), cast);
    expect(detectorsOnly?.message).toBe('invalid input syntax for type integer: "**** **** **** 1111 Ada"');
    const columns = maskNotice(createMasker([{ columns: ['customers.name'] }, { detectors: ['credit-card'] }]), cast);
    expect(columns?.message).toBe('invalid input syntax for type integer: "[REDACTED]"');
    expect(maskNotice(createMasker([]), cast)).toBeUndefined();
    expect(maskNotice(createMasker([{ columns: ['name'] }]), error({ code: '42P01', message: 'relation "x" does not exist' }))).toBeUndefined();
  });
});

describe('maskNotificationFrame', () => {
  const frameOf = (raw: Buffer): Frame => ({ type: raw[0]!, payload: raw.subarray(5), raw });
  const notification = (payload: string) => frameOf(encodeBackendMessage({ kind: 'NotificationResponse', processId: 7, channel: 'ch', payload }));
  const payloadOf = (raw: Buffer | undefined) => {
    const message = raw === undefined ? undefined : decodeBackendMessage(frameOf(raw));
    return message?.kind === 'NotificationResponse' ? message.payload : undefined;
  };
  const masker = createMasker([{ columns: ['customers.name'] }]);

  it('masks JSON members named like a masked column at any depth, and leaves other payloads alone', () => {
    expect(payloadOf(maskNotificationFrame(masker, notification('[{"id":1,"row":{"name":"Ada","n":2}}]')))).toBe('[{"id":1,"row":{"name":"[REDACTED]","n":2}}]');
    expect(maskNotificationFrame(masker, notification('{"id":1,"name":null}'))).toBeUndefined();
    expect(maskNotificationFrame(masker, notification('name: Ada'))).toBeUndefined();
    expect(maskNotificationFrame(masker, notification('{"name": broken'))).toBeUndefined();
  });
});
